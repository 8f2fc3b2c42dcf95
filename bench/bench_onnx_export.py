"""Cost of `GET /jobs/{id}/model?format=onnx`'s conversion beside reading the model file itself (run by hand).

    .venv/bin/python bench/bench_onnx_export.py                  # 1 M and 10 M parameter numpy models
    .venv/bin/python bench/bench_onnx_export.py --params 1e6 --dtype float64

For each size, in a fresh process: the time and peak RSS growth of loading the stored `.npz`
(what predict does), and of `read_stack` + `to_onnx` (what the export route does), then
onnxruntime's and the service predictor's time for 10,000 rows. No network, no database.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time
import numpy as np
from trainyard.core.datasets.prepared import Preprocessing
from trainyard.core.modelfile import load_model, save_model
from trainyard.core.network import Network

params, dtype = float(sys.argv[1]), sys.argv[2]
n_in, k = 100, 10
width = int((params / 2) ** 0.5)  # two hidden layers of `width`: about width² + (n_in + k) width weights
configs = [{"type": "dense", "units": width, "activation": "relu"}, {"type": "batch_norm"},
           {"type": "dense", "units": width, "activation": "tanh"}, {"type": "dropout", "rate": 0.1},
           {"type": "dense", "units": k, "activation": "softmax"}]
net = Network.from_configs(configs, n_in, np.random.default_rng(0), dtype)
pre = Preprocessing("classification", n_in, classes=list(range(k)), scaler="standard",
                    offset=[0.0] * n_in, scale=[2.0] * n_in)
blob = save_model(net, {}, pre, {})
del net
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
base = rss()
t = time.perf_counter(); predictor = load_model(blob); load_s = time.perf_counter() - t
after_load = rss()
from trainyard.core.export.onnx_graph import to_onnx
from trainyard.core.export.stack import read_stack
t = time.perf_counter(); onnx_bytes = to_onnx(read_stack(blob)); export_s = time.perf_counter() - t
after_export = rss()
import onnxruntime as ort
x = np.random.default_rng(1).normal(size=(10_000, n_in))
session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
t = time.perf_counter(); session.run(None, {"inputs": x}); ort_s = time.perf_counter() - t
t = time.perf_counter(); predictor.predict_proba(x); service_s = time.perf_counter() - t
n = sum(a.size for layer in predictor.network.layers for a in layer.weights().values())
print(json.dumps({"params": n, "dtype": dtype, "file_mb": len(blob) / 2**20, "onnx_mb": len(onnx_bytes) / 2**20,
                  "load_s": load_s, "load_rss_mb": after_load - base, "export_s": export_s,
                  "export_peak_rss_mb": after_export - after_load, "ort_10k_rows_s": ort_s,
                  "service_10k_rows_s": service_s}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=float, action="append", help="parameters (repeatable; default 1e6, 1e7)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args()
    for params in args.params or [1e6, 1e7]:
        out = subprocess.run([sys.executable, "-c", CHILD, str(params), args.dtype], cwd=ROOT, capture_output=True,
                             text=True, timeout=600, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print("  ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
