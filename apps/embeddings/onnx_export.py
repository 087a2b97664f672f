"""Build the ONNX Runtime graphs of a local sentence-transformers model, once, offline.

The bundled all-MiniLM-L6-v2 (BERT, mean pooling, L2 normalisation) is exported from its local
files with ``torch.onnx.export``, pooling and normalisation inside the graph so that one
``session.run`` returns the stored vectors. Nothing is downloaded: optimum-onnx would pin
transformers below 5 (the version sentence-transformers 6 runs on here), so the export is ours,
and only ``onnxruntime`` and ``onnx`` (both on PyPI, no hub access) are needed.

Two graphs per model, cached under ``DRIFTLINE_EMBEDDING_CACHE_DIR``:

- ``model.onnx``: fp32, with ONNX Runtime's BERT fusions applied offline (fused attention,
  embedding and skip layer norms, bias-GELU). Cosine to torch fp32: 1.0000.
- ``model-int8-r2.onnx``: the fused graph, weights quantized to int8 per output channel,
  except the feed-forward down-projections (``output.dense``). Their inputs, after GELU, have
  the widest range, and quantizing them too took the 1st percentile of cosine to fp32 on SNIPS
  from 0.992 to 0.985; per-tensor int8 (the common recipe) reached only 0.937. Activations are
  quantized at scales *frozen* from calibration texts shipped in ``data/`` (recipe r1 computed
  them per batch, so a vector moved with its batch-mates). Cosine to torch fp32 on SNIPS: mean
  0.995, 1st percentile 0.991; a text alone and in a batch: 1.0000. Static QDQ quantization
  (``quantize_static``) was tried and is not used: the fused Attention nodes stay fp32 in it
  and ONNX Runtime ran the graph 0.6x as fast as fp32 on these cores (AVX2, no VNNI).

A build takes ~20-60 s on 2 busy cores; concurrent workers wait on a file lock and then load
the winner's files. The cache directory is keyed by the export recipe and a fingerprint of the
source model, the int8 file name by its own recipe, so a new model or a new recipe is rebuilt
rather than loaded stale (a new int8 recipe reuses the cached fp32 graph).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# Bump when the export (RECIPE) or the quantization (INT8_RECIPE) changes: cached graphs are
# then rebuilt. Vectors of a changed recipe differ, so the provider key carries it as well (see
# providers.py). INT8_RECIPE 1 was dynamic quantization (per-batch activation scales).
RECIPE = "1"
INT8_RECIPE = "2"
FP32_FILE = "model.onnx"
INT8_FILE = f"model-int8-r{INT8_RECIPE}.onnx"
CALIBRATION_FILE = Path(__file__).resolve().parent / "data" / "int8_calibration.json"


def model_fingerprint(model_path: str) -> str:
    """Cheap identity of a local model: its config files' bytes and the weights' sizes."""
    root = Path(model_path)
    digest = hashlib.sha256(RECIPE.encode())
    for name in ("config.json", "modules.json", "sentence_bert_config.json", "tokenizer.json"):
        file = root / name
        if file.exists():
            digest.update(name.encode())
            digest.update(file.read_bytes())
    for weights in sorted(root.glob("*.safetensors")) + sorted(root.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def cache_dir_for(*, cache_root: Path, model_path: str, model_name: str) -> Path:
    return cache_root / f"{model_name}-onnx-r{RECIPE}-{model_fingerprint(model_path)}"


def ensure_built(*, cache_root: Path, model_path: str, model_name: str, int8: bool) -> Path:
    """The path of the wanted graph, building it first when it is not cached (the int8 graph
    is quantized from the fp32 one, which is exported first when missing)."""
    from filelock import FileLock

    target_dir = cache_dir_for(cache_root=cache_root, model_path=model_path, model_name=model_name)
    target = target_dir / (INT8_FILE if int8 else FP32_FILE)
    if target.exists():
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target_dir / ".build.lock"), timeout=900):
        if not target.exists():  # another process may have built it while we waited
            build(model_path=model_path, out_dir=target_dir)
    return target


def build(*, model_path: str, out_dir: Path) -> None:
    """Export and fuse (when not cached), then quantize; each file appears atomically (written
    aside, then renamed)."""
    import time

    started = time.monotonic()
    fp32 = out_dir / FP32_FILE
    config = json.loads((Path(model_path) / "config.json").read_text())
    if not fp32.exists():
        raw = out_dir / "export.tmp.onnx"
        _export(model_path=model_path, out=raw)
        fp32_tmp = out_dir / f"{FP32_FILE}.tmp"
        _fuse(model_path=model_path, src=raw, out=fp32_tmp)
        raw.unlink(missing_ok=True)
        os.replace(fp32_tmp, fp32)
    int8 = out_dir / INT8_FILE
    if not int8.exists():
        int8_tmp = out_dir / f"{INT8_FILE}.tmp"
        _quantize(src=fp32, out=int8_tmp, model_path=model_path)
        os.replace(int8_tmp, int8)
    (out_dir / "build.json").write_text(
        json.dumps(
            {
                "source": model_path,
                "recipe": RECIPE,
                "int8_recipe": INT8_RECIPE,
                "hidden_size": int(config["hidden_size"]),
                "heads": int(config["num_attention_heads"]),
                "seconds": round(time.monotonic() - started, 1),
            },
            indent=2,
        )
    )
    logger.info("embeddings: built ONNX graphs in %s", out_dir)


def _export(*, model_path: str, out: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import warnings

    import torch
    from sentence_transformers import SentenceTransformer

    # Eager attention traces to the MatMul/Softmax pattern ONNX Runtime fuses into one Attention
    # node per layer; the SDPA path traces to a graph its BERT optimizer fuses no attention in.
    model = SentenceTransformer(
        model_path, device="cpu", model_kwargs={"attn_implementation": "eager"}
    )
    modules: list[Any] = list(model)
    pooling = modules[1].get_config_dict() if len(modules) > 1 else {}
    mean = pooling.get("pooling_mode") == "mean" or pooling.get("pooling_mode_mean_tokens") is True
    if [type(m).__name__ for m in modules] != ["Transformer", "Pooling", "Normalize"] or not mean:
        raise ValueError(
            f"ONNX export supports Transformer + mean Pooling + Normalize models, not {model}"
        )
    encoder = modules[0].auto_model.eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    sample = model.tokenizer(
        ["a short text", "and a somewhat longer one, padded"], padding=True, return_tensors="pt"
    )
    inputs = ("input_ids", "attention_mask", "token_type_ids")
    dynamic = {name: {0: "batch", 1: "tokens"} for name in inputs}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python bools in HF code
        torch.onnx.export(
            Pooled().eval(),
            tuple(sample[name] for name in inputs),
            str(out),
            input_names=list(inputs),
            output_names=["embedding"],
            dynamic_axes={**dynamic, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,  # the TorchScript exporter needs no onnxscript
            do_constant_folding=True,
        )


def _fuse(*, model_path: str, src: Path, out: Path) -> tuple[int, int]:
    from onnxruntime.transformers import optimizer

    config = json.loads((Path(model_path) / "config.json").read_text())
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    fused = optimizer.optimize_model(
        str(src), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=1
    )
    fused.save_model_to_file(str(out))
    return hidden, heads


def _quantize(*, src: Path, out: Path, model_path: str) -> None:
    """int8 weights per output channel (not the FFN down-projections), activations at frozen
    scales: dynamic quantization's graph, then its per-batch scales replaced by calibrated
    constants (:func:`_freeze_activation_scales`)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(src), load_external_data=False)
    down_projections = [
        node.name
        for node in graph.graph.node
        if node.op_type == "MatMul"
        and "/output/dense" in node.name
        and "/attention/" not in node.name
    ]
    dynamic = out.with_name(out.name + ".dynamic.onnx")
    quantize_dynamic(
        str(src),
        str(dynamic),
        weight_type=QuantType.QInt8,
        per_channel=True,
        nodes_to_exclude=down_projections,
        # The fused contrib ops (Attention, SkipLayerNorm) defeat shape inference.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    try:
        _freeze_activation_scales(src=dynamic, out=out, model_path=model_path)
    finally:
        dynamic.unlink(missing_ok=True)


def calibration_texts() -> list[str]:
    """The texts that fix the int8 activation scales: shipped with this module, so every
    installation builds the same graph (same provider key, same vectors).

    Short requests (chatterbot-corpus first turns, BSD-3; SNIPS utterances the benchmarks'
    short set does not hold) and multi-sentence texts made by joining them, so the ranges cover
    both lengths the worker sees.
    """
    short = json.loads(CALIBRATION_FILE.read_text())["texts"]
    joined = [". ".join(short[i + j] for j in range(8)) + "." for i in range(0, len(short) - 8, 9)]
    return [*short, *joined]


def _freeze_activation_scales(*, src: Path, out: Path, model_path: str) -> None:
    """Replace every ``DynamicQuantizeLinear`` by a ``QuantizeLinear`` at calibrated constants.

    Dynamic quantization computes one scale per activation *tensor*, that is per batch: a text's
    vector then moved with its batch-mates (cosine 0.993 between a text alone and in a batch of
    64), so an exact duplicate did not come back at similarity 1.00. With the scales fixed, each
    text's tokens are quantized alike in any batch (padding is masked).

    The scale and zero point follow ``DynamicQuantizeLinear``'s own formula (uint8, range
    widened to hold 0), from each tensor's minimum and maximum over the calibration texts,
    embedded in length-sorted batches of 16 (little padding in the ranges). A value outside the
    range saturates.
    """
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper
    from tokenizers import Tokenizer

    model = onnx.load(str(src))
    nodes = [n for n in model.graph.node if n.op_type == "DynamicQuantizeLinear"]
    tensors = list(dict.fromkeys(n.input[0] for n in nodes))
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in tensors:
        probe.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    # Unoptimised: the probed tensors must keep their names.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(
        probe.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    tokenizer = Tokenizer.from_file(str(Path(model_path) / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=256)
    encodings = sorted(tokenizer.encode_batch(calibration_texts()), key=lambda e: len(e.ids))
    low = dict.fromkeys(tensors, 0.0)  # the range always holds 0 (as DynamicQuantizeLinear)
    high = dict.fromkeys(tensors, 0.0)
    for start in range(0, len(encodings), 16):
        batch = encodings[start : start + 16]
        width = max(len(e.ids) for e in batch)
        ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for i, encoding in enumerate(batch):
            ids[i, : len(encoding.ids)] = encoding.ids
            mask[i, : len(encoding.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        values = session.run(tensors, feed)
        for name, value in zip(tensors, values, strict=True):
            low[name] = min(low[name], float(value.min()))
            high[name] = max(high[name], float(value.max()))
    frozen = []
    for node in nodes:
        x = node.input[0]
        y, scale_name, zero_name = node.output
        scale = (high[x] - low[x]) / 255.0 or 1.0
        zero = int(np.clip(np.round(-low[x] / scale), 0, 255))
        model.graph.initializer.extend(
            [
                numpy_helper.from_array(np.array(scale, dtype=np.float32), scale_name),
                numpy_helper.from_array(np.array(zero, dtype=np.uint8), zero_name),
            ]
        )
        frozen.append(
            helper.make_node(
                "QuantizeLinear", [x, scale_name, zero_name], [y], name=f"{node.name}/frozen"
            )
        )
    kept = [n for n in model.graph.node if n.op_type != "DynamicQuantizeLinear"]
    del model.graph.node[:]
    model.graph.node.extend([*frozen, *kept])
    # Nodes must stay in topological order: put each QuantizeLinear before its consumers.
    _topological_sort(model.graph)
    onnx.save(model, str(out))


def _topological_sort(graph: Any) -> None:
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    pending = list(graph.node)
    ordered = []
    while pending:
        ready = [n for n in pending if all(not i or i in available for i in n.input)]
        if not ready:
            raise ValueError("ONNX graph has a cycle or a missing input")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        pending = [n for n in pending if n not in ready]
    del graph.node[:]
    graph.node.extend(ordered)
