"""`covip-train`: post-train Qwen3-VL on CoViP, and evaluate the checkpoints of a run.

covip-train --config trainer/configs/gspo.yaml [--field value ...]   train (or resume)
covip-train --preset paper --model M --data D --output_dir R          no YAML needed
covip-train --config FILE --print_config                              show the resolved config
covip-train evaluate RUN_DIR --tasks covip_caption [--limit N]        lmms-eval on every checkpoint
covip-train make-tiny-model DIR                                       a tiny random Qwen3-VL, for a CPU first run
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from importlib import resources
from pathlib import Path

import yaml

from covip.trainer import config as config_mod


def example_config(name: str) -> Path:
    """A shipped example config by name (`gspo`, `grpo`, `dr_grpo`, `paper`, `reference`)."""
    return Path(str(resources.files("covip.trainer") / "configs" / f"{name}.yaml"))


def train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="covip-train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"presets: {', '.join(config_mod.PRESETS)}; example configs: {example_config('gspo').parent}",
    )
    p.add_argument(
        "--config", help="YAML file of config fields (a shipped example's name also works: gspo, paper, reference)"
    )
    p.add_argument("--print_config", action="store_true", help="print the resolved config as YAML and exit")
    config_mod.add_field_flags(p)
    return p


def eval_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="covip-train evaluate",
        description="Run lmms-eval (covip_qwen3_vl with the LoRA adapter) on every complete checkpoint of a run; "
        "writes RUN_DIR/eval/checkpoint-N/<model>/ with results, sample logs and a leaderboard card.",
    )
    p.add_argument("run_dir", help="the training run's output_dir")
    p.add_argument("--tasks", default="covip_caption", help="lmms-eval tasks (default: %(default)s)")
    p.add_argument("--model_args", default="", help="extra adapter arguments, e.g. batch_size=8,max_pixels=401408")
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        help="samples per task, for smoke tests only: the leaderboard rejects results run with --limit",
    )
    p.add_argument(
        "--steps",
        type=_steps,
        default=(),
        help="comma-separated checkpoint steps to evaluate (default: all)",
    )
    p.add_argument(
        "--lmms_args",
        default="",
        help="more lmms_eval arguments, as one string (e.g. '--gen_kwargs max_new_tokens=64')",
    )
    return p


def _steps(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 50,100, got {text!r}") from None


def resolve_config(args: argparse.Namespace) -> config_mod.TrainConfig:
    values = {}
    if args.config:
        path = Path(args.config)
        if not path.is_file() and example_config(args.config).is_file():
            path = example_config(args.config)
        values.update(config_mod.load_yaml(path))
    values.update(config_mod.overrides_from_args(args))
    return config_mod.resolve(values)


def tiny_model_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="covip-train make-tiny-model",
        description="Write a tiny, randomly initialised Qwen3-VL (2 layers, hidden size 64; config, weights, "
        "tokenizer, processor) to DIR, built offline in about a second. It runs the real Qwen3-VL code path for a "
        "first CPU run with no download (`--config cpu_smoke --model DIR`); its outputs are noise.",
    )
    p.add_argument("dir", help="output directory")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if argv[:1] == ["make-tiny-model"]:
        from covip.model_adapters.tiny_qwen3 import build_tiny_qwen3_vl

        out = build_tiny_qwen3_vl(Path(tiny_model_parser().parse_args(argv[1:]).dir))
        print(f"tiny random Qwen3-VL: {out}")
        return 0
    if argv[:1] == ["evaluate"]:
        from covip.trainer.evaluate import EvalRequest, evaluate_run

        args = eval_parser().parse_args(argv[1:])
        request = EvalRequest(
            tasks=args.tasks,
            model_args=args.model_args,
            limit=args.limit,
            steps=args.steps,
            extra_args=tuple(shlex.split(args.lmms_args)),
        )
        try:
            submissions = evaluate_run(args.run_dir, request)
        except FileNotFoundError as exc:  # no checkpoint to evaluate, or no lmms_eval: the user's to fix
            print(f"covip-train evaluate: {exc}", file=sys.stderr)
            return 2
        for submission in submissions:
            print(f"results: {submission}")
        return 0
    args = train_parser().parse_args(argv)
    try:
        config = resolve_config(args)
    except (ValueError, OSError, argparse.ArgumentTypeError) as exc:  # the messages name the field or file
        print(f"covip-train: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(yaml.safe_dump({**config.to_dict(), "config_hash": config.config_hash()}, sort_keys=False), end="")
        return 0
    from covip.trainer.train import train

    try:
        run = train(config)
    except config_mod.SetupError as exc:
        print(f"covip-train: {exc}", file=sys.stderr)
        return 2
    print(f"run directory: {run}")
    return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
