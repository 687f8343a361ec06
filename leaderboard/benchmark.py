"""The benchmark a run was made on, when it can be found on this machine: to check every record against its sample
(`validate.py`) and to show query images (`images.py`).

Each task of a run records where its data was (`location`) and a fingerprint of its samples (`samples_sha256`,
computed by `covip.tasks.data.sources.Source`) in its identity. The benchmark is looked for at `--data DIR` when
given, else at that location, and used only when its samples have the same fingerprint and, when the run recorded
one, the same manifest hash (which covers the image bytes): a check or a page never uses another benchmark. Only
built directories (`covip-data build`) are read here; a run on a reference directory or an HF set is reported as
not checked, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from covip.tasks.data.canonical import load_caption_dataset, load_diagnostic_dataset
from covip.tasks.data.schema import CaptionSample, DiagnosticSample
from covip.tasks.data.sources import Source
from covip.tasks.results.run import TaskRun

Sample = CaptionSample | DiagnosticSample


@dataclass(frozen=True)
class Benchmark:
    """One family's samples of one split, by id, and the directory their image paths are relative to."""

    root: Path
    samples: dict[str, Sample]


@dataclass(frozen=True)
class _Loaded:
    samples: tuple[Sample, ...]
    manifest_sha256: str
    fingerprint: str


class Benchmarks:
    """Finds and loads (once per directory, family and split) the benchmark of each task of a run."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = data_dir
        self._loaded: dict[tuple[Path, str, str], _Loaded | str] = {}

    def find(self, task: TaskRun) -> Benchmark | str:
        """The task's benchmark, or why it is not available here."""
        data = (task.identity or {}).get("data")
        data = data if isinstance(data, dict) else {}
        location = str(data.get("location") or "")
        if self.data_dir is None and (not location or location.startswith("hf:")):
            return f"the run's data ({location or 'no location recorded'}) is not a benchmark directory"
        root = self.data_dir or Path(location)
        family, split = task.info.family, str(task.config.get("test_split") or "test")
        loaded = self._load(root, family, split)
        if isinstance(loaded, str):
            return loaded
        if loaded.fingerprint != data.get("samples_sha256"):
            return f"the benchmark at {root} holds other {family} samples than the run's (their fingerprint differs)"
        if data.get("manifest_sha256") and loaded.manifest_sha256 != data["manifest_sha256"]:
            return f"the benchmark at {root} is not the one the run used (its manifest differs)"
        return Benchmark(root, {s.sample_id: s for s in loaded.samples})

    def _load(self, root: Path, family: str, split: str) -> _Loaded | str:
        key = (root, family, split)
        if key not in self._loaded:
            try:
                if family == "caption":
                    dataset = load_caption_dataset(root, split, open_images=False)
                    samples, manifest = dataset.samples, dataset.manifest_sha256
                else:
                    samples, manifest = load_diagnostic_dataset(root, family, split, open_images=False)
                fingerprint = Source(str(root), root, samples, manifest).samples_sha256()
                self._loaded[key] = _Loaded(samples, manifest, fingerprint)
            except (OSError, ValueError) as exc:
                self._loaded[key] = f"no usable {family} benchmark at {root}: {str(exc).splitlines()[0]}"
        return self._loaded[key]
