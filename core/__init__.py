"""trainyard's neural-network core: the job spec, the numpy engine, datasets, model files and backends.

Where each concept of the course notes lives in the numpy engine: `CONCEPTS` below, one entry per concept as
`module:object` strings, with the notes' formula beside it (tests/core/test_concepts.py checks every entry resolves).
"""

__version__ = "0.1.0"

# concept of the course notes → "module:object" for each place it lives (strings: importing core stays light)
CONCEPTS: dict[str, tuple[str, ...]] = {
    # the step activation, the perceptron criterion and the perceptron rule together: one SGD step of the criterion
    # through the step output is w ← w + η (y − ŷ) x
    "perceptron": ("trainyard.core.activations:Step", "trainyard.core.losses:PerceptronCriterion",
                   "trainyard.core.optimizers:PerceptronRule"),
    # sigmoid neuron, ReLU, leaky ReLU, tanh: forward and derivative side by side
    "activations": ("trainyard.core.activations:Activation", "trainyard.core.activations:Sigmoid",
                    "trainyard.core.activations:ReLU", "trainyard.core.activations:LeakyReLU",
                    "trainyard.core.activations:Tanh", "trainyard.core.activations:get"),
    "one-hot encoding": ("trainyard.core.targets:encode", "trainyard.core.targets:decode"),
    "soft-max": ("trainyard.core.activations:Softmax",),
    # cost functions, decomposable into per-sample costs
    "losses": ("trainyard.core.losses:Loss", "trainyard.core.losses:MeanSquaredError",
               "trainyard.core.losses:MeanAbsoluteError", "trainyard.core.losses:BinaryCrossentropy",
               "trainyard.core.losses:CategoricalCrossentropy", "trainyard.core.losses:get"),
    # z = a W + b and a = h(z), layer by layer
    "forward propagation": ("trainyard.core.layers:Dense.forward", "trainyard.core.network:Network.forward"),
    # δ = a − y at the output (the head: output activation + loss in one object), then back through each layer
    "backprop": ("trainyard.core.heads:head_for", "trainyard.core.heads:OutputHead.delta",
                 "trainyard.core.heads:FusedHead.delta", "trainyard.core.network:Network.backprop",
                 "trainyard.core.layers:Dense.backprop"),
    # on shuffled mini-batches
    "gradient descent": ("trainyard.core.training:Trainer._train_epoch", "trainyard.core.optimizers:SGD"),
    "SGD": ("trainyard.core.training:Trainer._train_epoch", "trainyard.core.optimizers:SGD"),
    # SGD's momentum (and Nesterov), Adam's and RMSprop's running averages
    "momentum": ("trainyard.core.optimizers:SGD", "trainyard.core.optimizers:Adam",
                 "trainyard.core.optimizers:RMSprop"),
    # L1 / L2 penalties held by a layer's kernel
    "regularisation": ("trainyard.core.regularizers:L1L2", "trainyard.core.layers:Dense.penalty",
                       "trainyard.core.network:Network.penalty"),
    "dropout": ("trainyard.core.layers:Dropout",),
    "batch norm": ("trainyard.core.layers:BatchNorm",),
    # central differences: what every backward pass is tested against
    "gradient checking": ("trainyard.core.gradcheck:numerical_gradient",),
}
