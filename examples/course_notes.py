"""Run the course notes' examples as trainyard jobs and print the notes' tables next to what the service predicts.

    trainyard up &                          # or any service: TRAINYARD_URL / TRAINYARD_TOKEN
    python examples/course_notes.py         # every example; --only xor_relu keras_xor_model2 for some

All jobs are submitted first (so every worker trains at once), then each example prints its inputs,
the job's predictions, the expected labels (the truth table or the data's target column), and what the
notes printed — and whether the job reproduced the notes. Only the client library is needed; the
digits example shows a few test images' predictions when scikit-learn is installed.
The exit code is 0 when every job that could run succeeded, whatever the predictions.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

try:
    from trainyard.client import Client
    from trainyard.client.errors import ApiError
except ModuleNotFoundError as missing:  # a Python without trainyard's requirements (`requests`)
    sys.exit(f"{Path(__file__).name}: {missing}; run it with the virtualenv's Python: `. .venv/bin/activate` "
             "first (after `make run` or `make test` made it), or `.venv/bin/python examples/course_notes.py`")

HERE = Path(__file__).resolve().parent
GATES = [[0, 0], [0, 1], [1, 0], [1, 1]]
TRUTH = {"and": [0, 0, 0, 1], "or": [0, 1, 1, 1], "xor": [0, 1, 1, 0]}


@dataclass
class Example:
    """One of the notes' examples: its spec file, what the notes say about it, what it is fed."""

    spec: str
    title: str
    notes_predictions: list[int] | None = None  # what the notes printed (None: the notes show no run)
    notes_accuracy: float | None = None
    notes_probabilities: list[float] | None = None
    comment: str = ""
    inputs: list[list[float]] = field(default_factory=list)
    expected: list = field(default_factory=list)


def _num(value: object) -> str:
    """A metric for people: 4 decimals (0.9829, not 0.9828620394173093); `-` when missing."""
    return f"{value:.4f}" if isinstance(value, float) else "-" if value is None else str(value)


def cheese_rows() -> tuple[list[list[float]], list[int]]:
    """The cheese-festival decision table: (weather, company, transport) and `go`."""
    with open(HERE / "data" / "cheese_festival.csv") as handle:
        rows = list(csv.DictReader(handle))
    return ([[float(r["weather"]), float(r["company"]), float(r["transport"])] for r in rows],
            [int(r["go"]) for r in rows])


def examples() -> list[Example]:
    """The notes' examples in the order the notes show them."""
    cheese_inputs, cheese_go = cheese_rows()
    gate = lambda name: dict(inputs=GATES, expected=TRUTH[name])  # noqa: E731
    return [
        Example("cheese_festival_notes_weights.json", "cheese festival: w = (1, 1, 1), threshold 2 (notes' weights)",
                cheese_go, 1.0, inputs=cheese_inputs, expected=cheese_go),
        Example("cheese_festival.json", "cheese festival: a perceptron learns the 'any two' rule",
                cheese_go, 1.0, inputs=cheese_inputs, expected=cheese_go),
        Example("and_perceptron.json", "AND gate, one perceptron (step unit)", TRUTH["and"], 1.0, **gate("and")),
        Example("or_perceptron.json", "OR gate, one perceptron (step unit)", TRUTH["or"], 1.0, **gate("or")),
        Example("xor_perceptron.json", "XOR gate, one perceptron", None, None,
                comment="the notes: not possible without a hidden layer, so it cannot reach accuracy 1",
                **gate("xor")),
        Example("sklearn_xor_logistic.json", "XOR, MLPClassifier(activation='logistic', hidden=(2,))",
                [1, 1, 1, 1], 0.5, **gate("xor")),
        Example("sklearn_xor_relu.json", "XOR, MLPClassifier(activation='relu', hidden=(2,))",
                [0, 1, 1, 0], 1.0, **gate("xor")),
        Example("keras_xor_model1.json", "XOR, Keras model 1: Dense(2, sigmoid) + Dense(1, sigmoid)",
                [1, 1, 1, 0], 0.75, [0.51681733, 0.506059, 0.50623363, 0.49227926], **gate("xor")),
        Example("keras_xor_model2.json", "XOR, Keras model 2: Dense(2, relu) + Dense(1, sigmoid)",
                [0, 1, 1, 0], 1.0, [0.47793186, 0.5813429, 0.5805019, 0.398048], **gate("xor")),
        Example("keras_xor_model3.json", "XOR, Keras model 3: Dense(3, relu) + Dense(1, sigmoid)",
                [0, 1, 1, 0], 1.0, [0.3195203, 0.6992405, 0.6991698, 0.2968087], **gate("xor")),
        Example("xor_logistic.json", "XOR, Keras model 1 on trainyard's numpy engine", [1, 1, 1, 0], 0.75,
                **gate("xor")),
        Example("xor_relu.json", "XOR, Keras model 2 on trainyard's numpy engine", [0, 1, 1, 0], 1.0, **gate("xor")),
        Example("xor_relu_3.json", "XOR, Keras model 3 on trainyard's numpy engine", [0, 1, 1, 0], 1.0,
                **gate("xor")),
        Example("digits_15.json", "handwritten digits, 64-15-10 (the notes' MNIST network on 8x8 digits)"),
        Example("digits_32.json", "handwritten digits, 64-32-10"),
        Example("mnist_15.json", "MNIST 784-15-10 (needs the IDX files in the server's TRAINYARD_MNIST_DIR)"),
        Example("mnist_32.json", "MNIST 784-32-10 (needs the IDX files in the server's TRAINYARD_MNIST_DIR)"),
    ]


def load_spec(client: Client, example: Example, uploads: dict[str, str]) -> dict:
    """The example's spec; a local `path` dataset is uploaded once and named by its id (the API refuses paths)."""
    spec = json.loads((HERE / example.spec).read_text())
    dataset = spec["dataset"]
    if "path" in dataset:
        path = (HERE / dataset.pop("path")).resolve()
        if str(path) not in uploads:
            uploads[str(path)] = client.upload_dataset(path, name=path.stem, target=dataset.get("target"))["id"]
        dataset["id"] = uploads[str(path)]
    return spec


def digits_sample(count: int = 10) -> tuple[list[list[float]], list[int]]:
    """The last `count` of scikit-learn's digits (raw pixels) and their labels, or nothing without scikit-learn."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return [], []
    digits = load_digits()
    return digits.data[-count:].tolist(), digits.target[-count:].tolist()


def show(client: Client, example: Example, job) -> dict:
    """Print the example's table; return its summary."""
    print(f"\n== {example.spec}: {example.title}")
    print(f"   job {job.id}: {job.status}" + (f" ({job.error['code']}: {job.error['message']})" if job.error else ""))
    if not job.succeeded:
        return {"spec": example.spec, "status": job.status}
    metrics = job.metrics
    inputs, expected = example.inputs, example.expected
    if not inputs and example.spec.startswith("digits"):
        inputs, expected = digits_sample()
    summary = {"spec": example.spec, "status": job.status, "accuracy": metrics.get("accuracy"),
               "test_accuracy": metrics.get("test_accuracy")}
    if not inputs:
        print(f"   accuracy {_num(metrics.get('accuracy'))}, test accuracy {_num(metrics.get('test_accuracy'))}")
        return summary
    answer = client.predict(job.id, inputs)
    predictions, probabilities = answer["predictions"], answer.get("probabilities") or []
    notes = example.notes_predictions or [None] * len(inputs)
    notes_prob = example.notes_probabilities or [None] * len(inputs)
    header = f"   {'inputs':<16} {'p(1)':>7} {'pred':>5} {'expected':>9} {'notes':>6} {'notes p(1)':>11}"
    print(header)
    for n, row in enumerate(inputs):
        shown = " ".join(f"{v:g}" for v in row) if len(row) <= 8 else f"digit image #{n + 1}"
        prob = f"{probabilities[n][1]:.4f}" if probabilities and len(probabilities[n]) == 2 else "-"
        note = "-" if notes[n] is None else notes[n]
        note_p = "-" if notes_prob[n] is None else f"{notes_prob[n]:.4f}"
        print(f"   {shown:<16} {prob:>7} {predictions[n]!s:>5} {expected[n]!s:>9} {note!s:>6} {note_p:>11}")
    correct = sum(p == e for p, e in zip(predictions, expected)) / len(expected)
    summary.update(predictions=predictions, expected=expected, matches_expected=correct == 1.0)
    print(f"   predictions vs expected: {correct:.2f} correct; job accuracy {_num(metrics.get('accuracy'))}")
    if example.notes_predictions is not None:
        same = predictions == example.notes_predictions
        summary["matches_notes"] = same
        print(f"   the notes printed {example.notes_predictions} (accuracy {example.notes_accuracy}): "
              f"{'reproduced' if same else 'NOT reproduced'}")
    if example.comment:
        print(f"   {example.comment}: {'as expected' if correct < 1 else 'unexpected'} (accuracy {correct:.2f})")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="service address (default $TRAINYARD_URL)")
    parser.add_argument("--token", help="API token (default $TRAINYARD_TOKEN or $TRAINYARD_HOME/token)")
    parser.add_argument("--only", nargs="+", metavar="SPEC", help="spec names to run (e.g. xor_relu)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for each job")
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    args = parser.parse_args(argv)
    chosen = [e for e in examples() if not args.only or e.spec.removesuffix(".json") in
              {o.removesuffix(".json") for o in args.only}]
    listed = {e.spec for e in examples()}
    others = sorted(p.name for p in HERE.glob("*.json") if p.name not in listed)
    if others:
        print(f"not one of the notes' examples, not run: {', '.join(others)}")
    summaries, ok = [], True
    with Client(args.url, args.token) as client:
        uploads: dict[str, str] = {}
        submitted = []
        for example in chosen:
            try:
                submitted.append((example, client.submit(load_spec(client, example, uploads))))
            except ApiError as exc:  # e.g. MNIST files missing on the server: a 422 that says so
                print(f"\n== {example.spec}: {example.title}\n   not submitted: {exc.status} {exc.detail}")
                summaries.append({"spec": example.spec, "status": "not submitted", "error": exc.detail})
        for example, job in submitted:
            final = client.wait(job.id, timeout=args.timeout, progress=sys.stderr.isatty())
            ok &= final.succeeded
            summaries.append(show(client, example, final))
        for dataset_id in uploads.values():
            client.delete_dataset(dataset_id)
    if args.json:
        print(json.dumps({"examples": summaries}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
