"""trainyard's neural-network core: the job spec, the numpy engine, datasets, model files and backends.

Where each concept of the course notes lives in the numpy engine (`CONCEPTS` below, as
`module:object`; tests/core/test_concepts.py checks every entry resolves):

- perceptron: the step activation, the perceptron criterion and the perceptron rule together
  (one SGD step of the criterion through the step output is w ← w + η (y - ŷ) x)
- activations (sigmoid neuron, ReLU, leaky ReLU, tanh): `core.activations`, forward and derivative side by side
- one-hot encoding: `core.targets.encode` (and `decode` back to classes)
- soft-max: `core.activations.Softmax`
- cost functions (losses), decomposable into per-sample costs: `core.losses`
- forward propagation, z = a W + b and a = h(z) layer by layer: `Dense.forward`, `Network.forward`
- back propagation from δ = a - y at the output (`core.heads`) through each layer: `Network.backprop`
- gradient descent / SGD on shuffled mini-batches: `Trainer._train_epoch`, the step in `optimizers.SGD`
- momentum: `optimizers.SGD` with `momentum` (and Nesterov), Adam's and RMSprop's running averages
- regularisation (L1 / L2 penalties on a layer's kernel): `core.regularizers`
- dropout and batch normalisation: `core.layers.Dropout`, `core.layers.BatchNorm`
- gradient checking (central differences, what every backward pass is tested against): `core.gradcheck`
"""

__version__ = "0.1.0"

# concept of the course notes → "module:object" for each place it lives (strings: importing core stays light)
CONCEPTS: dict[str, tuple[str, ...]] = {
    "perceptron": ("trainyard.core.activations:Step", "trainyard.core.losses:PerceptronCriterion",
                   "trainyard.core.optimizers:PerceptronRule"),
    "activations": ("trainyard.core.activations:Activation", "trainyard.core.activations:Sigmoid",
                    "trainyard.core.activations:ReLU", "trainyard.core.activations:LeakyReLU",
                    "trainyard.core.activations:Tanh", "trainyard.core.activations:get"),
    "one-hot encoding": ("trainyard.core.targets:encode", "trainyard.core.targets:decode"),
    "soft-max": ("trainyard.core.activations:Softmax",),
    "losses": ("trainyard.core.losses:Loss", "trainyard.core.losses:MeanSquaredError",
               "trainyard.core.losses:MeanAbsoluteError", "trainyard.core.losses:BinaryCrossentropy",
               "trainyard.core.losses:CategoricalCrossentropy", "trainyard.core.losses:get"),
    "forward propagation": ("trainyard.core.layers:Dense.forward", "trainyard.core.network:Network.forward"),
    "backprop": ("trainyard.core.heads:head_for", "trainyard.core.heads:OutputHead.delta",
                 "trainyard.core.heads:FusedHead.delta", "trainyard.core.network:Network.backprop",
                 "trainyard.core.layers:Dense.backprop"),
    "gradient descent": ("trainyard.core.training:Trainer._train_epoch", "trainyard.core.optimizers:SGD"),
    "SGD": ("trainyard.core.training:Trainer._train_epoch", "trainyard.core.optimizers:SGD"),
    "momentum": ("trainyard.core.optimizers:SGD", "trainyard.core.optimizers:Adam",
                 "trainyard.core.optimizers:RMSprop"),
    "regularisation": ("trainyard.core.regularizers:L1L2", "trainyard.core.layers:Dense.penalty",
                       "trainyard.core.network:Network.penalty"),
    "dropout": ("trainyard.core.layers:Dropout",),
    "batch norm": ("trainyard.core.layers:BatchNorm",),
    "gradient checking": ("trainyard.core.gradcheck:numerical_gradient",),
}
