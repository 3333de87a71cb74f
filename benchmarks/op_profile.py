"""Per-op timings of `.tflite` files from LiteRT's own op profiler, XNNPACK's ops inside its partitions included.

The `ai_edge_litert` Python API has no profiler, and no PyPI package ships TFLite's `benchmark_model`
binary, but the wheel's `libLiteRt.so` exports LiteRT's C API: a CompiledModel built with the
runtime option `enable_profiling = true` owns a profiler (`LiteRtCompiledModelGetProfiler`) whose
`LiteRtGetProfileSummary` is `benchmark_model`'s per-op report ("Run Order", "Summary by node
type"). XNNPACK reports each of its operators to it, so one sees what runs inside a partition
(`Delegate/...` rows) and what LiteRT's builtin kernels run (the other rows). This script calls
that C API with ctypes.

Profiling adds time to every op: use the tables for where time goes, and the interleaved timings
(no profiler, as in `benchmarks/latency.py`) for how long a model takes.

With no files, it answers "why was int8 MobileNetV3-Small barely faster than float32 on x86?": it
exports V3-Small (thesis head, ImageNet weights) as float32, as int8 the way `export` writes it
(hard-swish kept in float), as int8 with the multiplications in float too, and as int8 with
hard-swish written in int8 arithmetic (the earlier export), then reports partitions, ms at 1 and 2
threads (interleaved) and the per-op tables side by side.

    python benchmarks/op_profile.py                       # writes benchmarks/results/op_profile.{json,md} (~3 min)
    python benchmarks/op_profile.py FILE.tflite [FILE ...] [--threads 1] [--rounds 10] [--runs 20]
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import machine  # benchmarks/machine.py, beside this script

from nsfw_mobilenet.core import native_output

CPU_ACCELERATOR = 1  # kLiteRtHwAcceleratorCpu
RUNTIME_OPTIONS = "runtime_options_string"  # opaque option identifiers; payloads are TOML text
XNNPACK_OPTIONS = "xnnpack"
DYNAMIC = -1
WARMUP = 10


class LiteRtError(RuntimeError):
    """A LiteRT C call returned an error status."""


def _library() -> ctypes.CDLL:
    import ai_edge_litert

    path = Path(ai_edge_litert.__file__).parent / "libLiteRt.so"
    if not path.exists():
        raise LiteRtError(f"{path} not found: the ai-edge-litert wheel ships it from 2.x; pip install 'ai-edge-litert>=2.3'")
    return ctypes.CDLL(str(path))


def _check(status: int, call: str) -> None:
    if status != 0:
        raise LiteRtError(f"{call} returned LiteRtStatus {status}")


class ProfiledModel:
    """A `.tflite` compiled for LiteRT's CPU accelerator (XNNPACK) with the op profiler on, at batch 1."""

    def __init__(self, path: Path | str, threads: int):
        self._lib = _library()
        self._libc = ctypes.CDLL(None)
        self._libc.strdup.restype = ctypes.c_void_p
        self._libc.strdup.argtypes = [ctypes.c_char_p]
        self.path = Path(path)
        self.environment = self._out("LiteRtCreateEnvironment", 0, None)
        self.model = self._out("LiteRtCreateModelFromFile", self.environment, str(self.path).encode())
        options = self._out("LiteRtCreateOptions")
        _check(self._lib.LiteRtSetOptionsHardwareAccelerators(options, CPU_ACCELERATOR), "LiteRtSetOptionsHardwareAccelerators")
        self._add_options(options, XNNPACK_OPTIONS, f"num_threads = {threads}\n")
        self._add_options(options, RUNTIME_OPTIONS, "enable_profiling = true\n")
        self.compiled = self._out("LiteRtCreateCompiledModel", self.environment, self.model, options)
        signature = self._out("LiteRtGetModelSignature", self.model, ctypes.c_size_t(0))
        self._inputs = (ctypes.c_void_p * 1)(self._buffer(signature, "Input"))
        self._outputs = (ctypes.c_void_p * 1)(self._buffer(signature, "Output"))
        self.profiler = self._out("LiteRtCompiledModelGetProfiler", self.compiled)

    def _out(self, function: str, *arguments: Any) -> ctypes.c_void_p:
        """Call a LiteRT C function whose last parameter receives a handle, and return the handle."""
        handle = ctypes.c_void_p()
        _check(getattr(self._lib, function)(*arguments, ctypes.byref(handle)), function)
        return handle

    def _add_options(self, options: ctypes.c_void_p, identifier: str, toml: str) -> None:
        payload = ctypes.c_void_p(self._libc.strdup(toml.encode()))  # freed by LiteRT with free()
        free = ctypes.cast(self._libc.free, ctypes.c_void_p)
        opaque = self._out("LiteRtCreateOpaqueOptions", identifier.encode(), payload, free)
        _check(self._lib.LiteRtAddOpaqueOptions(options, opaque), "LiteRtAddOpaqueOptions")

    def _buffer(self, signature: ctypes.c_void_p, kind: str) -> ctypes.c_void_p:
        """A managed buffer for the signature's first input or output; a dynamic batch is fixed to 1."""
        tensor = self._out(f"LiteRtGetSignature{kind}TensorByIndex", signature, ctypes.c_size_t(0))
        tensor_type = ctypes.create_string_buffer(256)  # LiteRtRankedTensorType: element type, rank, dimensions...
        _check(self._lib.LiteRtGetRankedTensorType(tensor, tensor_type), "LiteRtGetRankedTensorType")
        words = ctypes.cast(tensor_type, ctypes.POINTER(ctypes.c_int32))
        if words[2] == DYNAMIC:  # words: element type, rank bits, dimension 0, ...
            words[2] = 1
        requirements = self._out(f"LiteRtGetCompiledModel{kind}BufferRequirements", self.compiled,
                                 ctypes.c_size_t(0), ctypes.c_size_t(0))
        return self._out("LiteRtCreateManagedTensorBufferFromRequirements", self.environment, tensor_type, requirements)

    def run(self) -> None:
        _check(self._lib.LiteRtRunCompiledModel(self.compiled, ctypes.c_size_t(0), ctypes.c_size_t(1), self._inputs,
                                                ctypes.c_size_t(1), self._outputs), "LiteRtRunCompiledModel")

    @contextmanager
    def profiling(self) -> Iterator[None]:
        _check(self._lib.LiteRtResetProfiler(self.profiler), "LiteRtResetProfiler")
        _check(self._lib.LiteRtStartProfiler(self.profiler), "LiteRtStartProfiler")
        try:
            yield
        finally:
            _check(self._lib.LiteRtStopProfiler(self.profiler), "LiteRtStopProfiler")

    def summary(self) -> str:
        """The profiler's report (benchmark_model's text)."""
        text = self._out("LiteRtGetProfileSummary", self.profiler, self.compiled)
        try:
            return ctypes.string_at(text).decode() if text.value else ""
        finally:
            self._libc.free(text)  # the caller owns the summary


def profile_interleaved(paths: list[Path], threads: int = 2, rounds: int = 10, runs: int = 20) -> dict[Path, list[dict[str, Any]]]:
    """Per-op-type times of each file, profiled in interleaved rounds of `runs` invocations.

    Like `latency.timed_invocations`, taking turns spreads other jobs' load over all files; each op
    type's time is the median over the rounds, so a round hit by another job does not skew it. The
    input is whatever the fresh buffer holds: these ops take the same time whatever the pixels.
    """

    with native_output.native_stderr_discarded():  # LiteRT's INFO lines about accelerators it looks for
        models = [ProfiledModel(path, threads) for path in paths]
    for model in models:
        for _ in range(WARMUP):
            model.run()
    per_round: dict[Path, list[list[dict[str, Any]]]] = {path: [] for path in paths}
    for _ in range(rounds):
        for model in models:
            with model.profiling():
                for _ in range(runs):
                    model.run()
            per_round[model.path].append(node_types(model.summary()))
    return {path: median_rows(found) for path, found in per_round.items()}


def median_rows(rounds: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per op type: median ms per run over the rounds, shares of the medians' total."""
    by_op: dict[str, list[dict[str, Any]]] = {}
    for rows in rounds:
        for row in rows:
            by_op.setdefault(row["op"], []).append(row)
    merged = [{**found[0], "ms_per_run": round(float(statistics.median(r["ms_per_run"] for r in found)), 4)}
              for found in by_op.values()]
    total = sum(row["ms_per_run"] for row in merged) or 1.0
    merged = [{**row, "share": round(row["ms_per_run"] / total, 4)} for row in merged]
    return sorted(merged, key=lambda row: -row["ms_per_run"])


def section(report: str, title: str) -> list[str]:
    """The lines of one `====== title ======` table of the report, header included."""
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if title in line and line.lstrip().startswith("="))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start + 1:end]


def node_types(report: str) -> list[dict[str, Any]]:
    """'Summary by node type' as rows: op, count, ms per run (all such ops), share, in XNNPACK or not."""
    rows = []
    for line in section(report, "Summary by node type")[1:]:
        name, count, average_ms, percent = line.rsplit(None, 6)[0].strip(), *line.split()[-6:-3]
        count = int(count)
        rows.append({"op": name, "count": count, "ms_per_run": round(float(average_ms) * count, 4),
                     "share": round(float(percent.rstrip("%")) / 100, 4), "in_xnnpack": name.startswith("Delegate/")})
    return rows


def node_type_markdown(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| op | where | count | ms per run | share |", "|---|---|---:|---:|---:|"]
    for row in rows:
        where = "XNNPACK" if row["in_xnnpack"] else "**LiteRT builtin**"
        op = row["op"].removeprefix("Delegate/")
        lines.append(f"| {op} | {where} | {row['count']} | {row['ms_per_run']:.3f} | {row['share']:.1%} |")
    return lines


# ---------------------------------------------------------------- V3-Small float32 vs int8


def hard_swish_in_int8_arithmetic(model: Any) -> Any:
    """A copy of `model` with hard-swish written as (x / 6) · relu6(x + 3): the earlier int8 export's
    form, which the converter does not fuse into HARD_SWISH, so int8 runs it as MUL/ADD in XNNPACK."""
    import keras

    from nsfw_mobilenet.app import export

    def clone(layer: Any) -> Any:
        config = layer.get_config()
        if isinstance(layer, keras.layers.Activation) and config["activation"] in export.HARD_SWISH_NAMES:
            return keras.layers.Lambda(lambda x: (x * (1 / 6)) * keras.ops.relu6(x + 3.0), name=layer.name)
        return layer.__class__.from_config(config)

    rewritten = keras.models.clone_model(model, clone_function=clone, recursive=True)
    rewritten.set_weights(model.get_weights())
    return rewritten


def v3_small_forms(folder: Path) -> dict[str, Path]:
    """V3-Small (thesis head) as float32, int8 as `export` writes it, int8 with MUL in float, and the earlier int8."""
    import latency  # benchmarks/latency.py, next to this script

    from nsfw_mobilenet.app import export
    from nsfw_mobilenet.core.taxonomy import BINARY

    images = latency.calibration_images()
    model = latency.contenders(images, ["mobilenet_v3_small"], exact=True)[0]["model"]
    options = {"classes": BINARY.classes, "pixel_scaling": None, "representative_images": images}  # V3 rescales itself
    earlier = folder / "int8_hard_swish_int8.tflite"
    earlier.write_bytes(export.convert(hard_swish_in_int8_arithmetic(model), "int8", images))
    return {
        "float32": export.export_tflite(model, folder / "float32", "float32", **options).path,
        "int8 (hard-swish in float)": export.export_tflite(model, folder / "int8", "int8", **options).path,
        "int8, MUL in float too": export.export_tflite(model, folder / "float_mul", "int8",
                                                       float_ops=export.INT8_FLOAT_MULTIPLICATIONS, **options).path,
        "int8, hard-swish as int8 MUL/ADD (earlier export)": earlier,
    }


def compare(forms: dict[str, Path], threads: tuple[int, ...], runs: int, profile_threads: int) -> dict[str, Any]:
    """Partitions, interleaved ms per thread count, and interleaved per-op tables of each form."""
    import latency
    import numpy as np

    from nsfw_mobilenet.app.litert import LiteRTModel

    image = latency.calibration_images(1)[0]
    calls = {(name, count): latency.model_call(LiteRTModel(path, num_threads=count), image)
             for name, path in forms.items() for count in threads}
    times = latency.timed_invocations(calls, runs)
    ops = profile_interleaved(list(forms.values()), profile_threads)
    return {name: {"size_bytes": path.stat().st_size, **latency.xnnpack_coverage(path),
                   **{f"ms_{count}_threads": round(float(np.median(times[(name, count)])), 3) for count in threads},
                   "op_types": ops[path]}
            for name, path in forms.items()}


def comparison_markdown(report: dict[str, Any]) -> str:
    forms, threads = report["forms"], report["threads"]
    reference = forms["float32"]
    lines = ["# V3-Small float32 vs int8 on x86: partitions and LiteRT op profiles (generated by "
             "`python benchmarks/op_profile.py`, do not edit)", "",
             f"{report['date']} · {report['machine']} · {report['cpu']} · LiteRT {report['ai_edge_litert']} · load "
             f"average before {report['load_average_before']}, after {report['load_average_after']}", "",
             *machine.quiet_banner(report),
             f"ms: median of {report['runs']} interleaved calls (set input, invoke, read output; no profiler). "
             f"Op tables: LiteRT's profiler at {report['profile_threads']} thread(s), median over interleaved rounds; "
             "the profiler's own cost inflates every op, so read shares, not absolute times.", "",
             "| form | MB | XNNPACK partitions | ops outside XNNPACK | "
             + " | ".join(f"ms {count} thr (× float32)" for count in threads) + " |",
             "|---|---:|---:|---|" + "---:|" * len(threads)]
    for name, form in forms.items():
        outside = ", ".join(f"{op}×{n}" for op, n in sorted(form["outside_xnnpack"].items())) or "none"
        cells = " | ".join(f"{form[f'ms_{count}_threads']:.3f} ({form[f'ms_{count}_threads'] / reference[f'ms_{count}_threads']:.2f})"
                           for count in threads)
        lines.append(f"| {name} | {form['size_bytes'] / 1e6:.2f} | {form['partitions']} | {outside} | {cells} |")
    for name, form in forms.items():
        total = sum(row["ms_per_run"] for row in form["op_types"])
        lines += ["", f"## {name}: ops by type ({total:.3f} ms per run under the profiler)", "",
                  *node_type_markdown(form["op_types"])]
    return "\n".join(lines) + "\n"


def cpu_name() -> str:
    """The CPU model and its vector extensions XNNPACK picks kernels by (Linux)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "CPU unknown"
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "CPU")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    vector = [flag for flag in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni") if flag in flags]
    return f"{name} ({', '.join(vector) or 'no AVX2'})"


def investigate(out: Path, runs: int, profile_threads: int) -> None:
    """Export the V3-Small forms, compare them, write op_profile.{json,md} into `out` and print the markdown."""
    import tempfile

    from nsfw_mobilenet.app import model_card

    record = machine.start_record()
    with tempfile.TemporaryDirectory() as work:
        forms = v3_small_forms(Path(work))
        compared = compare(forms, (1, 2), runs, profile_threads)
    report = {**machine.finish_record(record), "cpu": cpu_name(),
              "ai_edge_litert": model_card.library_versions()["ai_edge_litert"], "runs": runs, "threads": [1, 2],
              "profile_threads": profile_threads, "forms": compared}
    machine.write_results("op_profile", report, comparison_markdown(report), out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="exported .tflite files (none: the V3-Small comparison)")
    parser.add_argument("--threads", type=int, default=1, help="threads while profiling")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=20, help="profiled invocations per file and round")
    parser.add_argument("--timed-runs", type=int, default=300, help="timed invocations per form (V3-Small comparison)")
    parser.add_argument("--out", type=Path, default=machine.RESULTS)
    args = parser.parse_args(argv)
    if not args.files:
        investigate(args.out, args.timed_runs, args.threads)
        return 0
    missing = [str(path) for path in args.files if not path.is_file()]
    if missing:
        print(f"op_profile: error: not files: {', '.join(missing)}; pass exported .tflite files", file=sys.stderr)
        return 2
    for path, rows in profile_interleaved(args.files, args.threads, args.rounds, args.runs).items():
        total = sum(row["ms_per_run"] for row in rows)
        print(f"## {path} ({args.threads} threads, {total:.3f} ms per run under the profiler)\n")
        print("\n".join(node_type_markdown(rows)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
