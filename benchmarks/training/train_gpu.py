"""The shipped GEM model's training run on one GPU, with its ablations and evaluation, in one go.

Run on the GPU machine from the repository root (the default model and the rows file must be there; the
evaluation data under --data-root or $GEM_RAG_DATA):
    python -m benchmarks.training.train_gpu --rows ROWS --data-root DATA --out OUT --budget-min 5.0 \
        --ablations abl-dropout,abl-ict --ablation-budget-min 1.5 --ablation-grace-s 80

It (1) loads the default model on CUDA and checks embed + generate (the core's GPU check), (2) trains the
shipped recipe alone on the GPU (phase 1 + phase 2, ``--preset gpu``), (3) then starts the named short
phase-2-only ablations (``--ablations``: one positive kind at a time, all kinds, all kinds without NTP mixing,
all kinds after phase 1) while it evaluates the shipped model in fp32 (all tasks but MiniLM, which is not on
that machine), (4) loads the trained artefact the way users get it (``GemModel.from_pretrained(device="cuda")``)
and checks it, and (5) packs artefact, logs and figures into ``OUT``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from benchmarks.common import DATA_ROOT_HELP, data_root

logger = logging.getLogger(__name__)
ABLATION = ["--contrastive-steps", "120", "--contrastive-batch", "128", "--ntp-mix-batch", "16",
            "--grad-checkpointing", "true", "--max-tokens", "256", "--progress", "false"]
ABLATIONS = {
    "abl-dropout": ["--ntp-steps", "0", "--positives", "dropout"],
    "abl-ict": ["--ntp-steps", "0", "--positives", "ict"],
    "abl-heading": ["--ntp-steps", "0", "--positives", "heading"],
    "abl-all": ["--ntp-steps", "0", "--positives", "dropout,ict,heading"],
    "abl-all-nontp": ["--ntp-steps", "0", "--positives", "dropout,ict,heading", "--ntp-weight", "0"],
    "abl-all-phase1": ["--ntp-steps", "150", "--ntp-batch", "64", "--positives", "dropout,ict,heading"],
}


def log(message: str) -> None:
    logger.info(message)


def core_gpu_check(label: str) -> dict:
    """GemModel.from_pretrained(device="cuda"): embed + generate, as a user would."""
    import numpy as np

    from gem_rag import GemModel

    t0 = time.time()
    model = GemModel.from_pretrained(device="cuda") if label == "shipped" else GemModel.from_pretrained(device="cuda", gem_weights=None)
    vectors = model.embed(["The cat sat on the mat.", "A kitten rested on a rug.", "Kernel modules are loaded with modprobe."])
    result = model.generate("The capital of France is", max_new_tokens=12)
    check = {"label": label, "name": model.name, "device": str(model.device), "dtype": str(model.dtype),
             "embed_shape": list(vectors.shape), "finite": bool(np.isfinite(vectors).all()),
             "cos_cat_kitten": round(float(vectors[0] @ vectors[1]), 4), "cos_cat_kernel": round(float(vectors[0] @ vectors[2]), 4),
             "generate": result.text, "completion_tokens": result.completion_tokens, "seconds": round(time.time() - t0, 1)}
    log(f"core GPU check: {json.dumps(check)}")
    return check


def base_weights_checksum() -> dict:
    """Sum of |w| over the converted default model, to compare with the machine the artefact is used on."""
    from safetensors.torch import load_file

    from gem_rag.core.loading import resolve_model_folder

    tensors = load_file(str(Path(resolve_model_folder(None)[0]) / "model.safetensors"))
    return {"tensors": len(tensors), "abs_sum": float(sum(t.double().abs().sum() for t in tensors.values()))}


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", required=True)
    parser.add_argument("--data-root", default=None, help=DATA_ROOT_HELP)
    parser.add_argument("--out", required=True)
    parser.add_argument("--work", default="/tmp/gem_runs")
    parser.add_argument("--budget-min", type=float, default=4.6, help="wall time of the main training run")
    parser.add_argument("--ablations", default=",".join(ABLATIONS), help="comma list of ablations to run ('' for none)")
    parser.add_argument("--ablation-budget-min", type=float, default=2.5, help="wall time of each ablation's training")
    parser.add_argument("--ablations-beside", action="store_true",
                        help="run the ablations beside the main run (the first run did; it starved the main run)")
    parser.add_argument("--ablation-grace-s", type=float, default=200.0, help="how long ablations may outlive the main run")
    return parser


def wait_ablations(ablations: dict, codes: dict, grace_s: float, started: float) -> None:
    """Wait for the ablations at most ``grace_s`` after now (never let one hold up the shipped model); their exit
    codes, or "killed", go into ``codes``."""
    main_done = time.time()
    for name, proc in ablations.items():
        try:
            codes[name] = proc.wait(timeout=max(1.0, grace_s - (time.time() - main_done)))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes[name] = "killed"
        log(f"{name} finished with {codes[name]} at +{time.time() - started:.0f} s")


def pack(work: Path, target: Path) -> None:
    """The runs' logs and figures (.json, .log under ``work``) into the tarball ``target``."""
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted(work.rglob("*")):
            if path.is_file() and path.suffix in (".json", ".log"):
                tar.add(path, arcname=str(path.relative_to(work)))


def main() -> int:
    args = arguments().parse_args()
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    out, work = Path(args.out), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    checks = [core_gpu_check("base"), base_weights_checksum()]
    log(f"base weights: {checks[-1]}")

    py = sys.executable
    train = [py, "-m", "gem_rag.cli", "-v", "train", "--rows", args.rows]
    main_cmd = train + ["--out", str(work / "main"), "--preset", "gpu", "--time-budget-min", str(args.budget_min),
                        "--progress", "false"]
    main_proc = subprocess.Popen(main_cmd, stdout=open(work / "main.log", "w"), stderr=subprocess.STDOUT)
    log("started main: " + " ".join(main_cmd[1:]))
    evaluate = [py, "-m", "benchmarks.quality.retrieval_quality", "--data-root", str(data_root(args.data_root)),
                "--device", "cuda", "--dtype", "float32"]

    def start_ablations() -> dict:
        procs = {}
        for name in filter(None, args.ablations.split(",")):
            cmd = train + ["--out", str(work / name), "--time-budget-min", str(args.ablation_budget_min)] + ABLATION + ABLATIONS[name]
            chain = " ".join(cmd) + " && " + " ".join(evaluate + ["--gem", str(work / name / "artefact"), "--models", "gem",
                                                                  "--tasks", "squad,faq,lee", "--json", str(work / f"{name}.eval.json")])
            procs[name] = subprocess.Popen(["bash", "-c", chain], stdout=open(work / f"{name}.log", "w"), stderr=subprocess.STDOUT)
        return procs

    # Time-slicing one GPU between runs slows each about as many times as there are runs (the first run
    # started the ablations beside the main run and starved it), so by default they start after it.
    ablations = start_ablations() if args.ablations_beside else {}
    codes = {"main": main_proc.wait()}
    log(f"main finished with {codes['main']} at +{time.time() - started:.0f} s")
    artefact = work / "main" / "artefact"
    if codes["main"] == 0:
        out.mkdir(parents=True, exist_ok=True)
        for file in ("gem_card.json", "gem_weights.safetensors"):
            shutil.copy(artefact / file, out / file)
        if not args.ablations_beside:
            ablations = start_ablations()
        subprocess.run(evaluate + ["--gem", str(artefact), "--models", "base-mean,base-last,base-special,gem,bm25",
                                   "--rows", args.rows, "--json", str(work / "main.eval.json"), "--update-card"],
                       stdout=open(work / "main.eval.log", "w"), stderr=subprocess.STDOUT)
        shutil.copy(artefact / "gem_card.json", out / "gem_card.json")
        shipped = Path("gem_rag/weights/smollm2-135m-gem")
        shipped.mkdir(parents=True, exist_ok=True)
        for file in ("gem_card.json", "gem_weights.safetensors"):
            shutil.copy(artefact / file, shipped / file)
        checks.append(core_gpu_check("shipped"))
    wait_ablations(ablations, codes, args.ablation_grace_s, started)
    (work / "gpu_checks.json").write_text(json.dumps({"checks": checks, "exit_codes": codes,
                                                      "seconds": round(time.time() - started, 1)}, indent=2))
    pack(work, out / "runs.tar.gz")
    log(f"done in {time.time() - started:.0f} s: {codes}")
    return 0 if codes.get("main") == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
