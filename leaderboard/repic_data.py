"""The RePIC data a run's `repic_*` task used, when it can be found on this machine: to check every record against it
(`validate.py`) and to show its pictures (`repic_site.py`).

A RePIC task records its RePIC directory (`data.location`), the database and query files it read (`repic.files`),
their sha256 (`repic.sha256`) and the fingerprint of the samples it loaded (`data.samples_sha256`). The directory is
looked for at `--repic-data DIR` when given, else at the recorded location, loaded with
`covip.tasks.repic.dataset.load_repic_set` (which validates both files and opens every image), and used only when
both files have the run's sha256 and the samples the run's fingerprint: a check or a page never uses other data.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from covip.tasks.data.sources import Source
from covip.tasks.repic.dataset import RepicSet, load_repic_set
from covip.tasks.repic.prompt import caption_request
from covip.tasks.results.records import RECORD_KEY, RepicRecord
from covip.tasks.results.run import LoggedSample, TaskRun

if TYPE_CHECKING:  # validate.py imports this module
    from covip.leaderboard.validate import Identity


class RepicSets:
    """Finds and loads (once per directory, file pair and bucket) the RePIC data of each `repic_*` task of a run."""

    def __init__(self, repic_dir: Path | None = None) -> None:
        self.repic_dir = repic_dir
        self._loaded: dict[tuple[Path, str, str, int], RepicSet | str] = {}

    def find(self, task: TaskRun, identity: Identity) -> RepicSet | str:
        """The task's RePIC data, or why it is not available here (`identity`: the task's, validated)."""
        if identity.repic is None or task.info.bucket is None:
            return "the run recorded no RePIC files"
        root = self.repic_dir or Path(identity.data.location)
        files = identity.repic.files
        if not all((root / name).resolve().is_relative_to(root.resolve()) for name in (files.database, files.queries)):
            return f"the run's RePIC files ({files.database}, {files.queries}) are not inside a RePIC directory"
        key = (root, files.database, files.queries, task.info.bucket)
        if key not in self._loaded:
            try:
                self._loaded[key] = load_repic_set(root, files.database, files.queries, task.info.bucket)
            except (OSError, ValueError) as exc:
                self._loaded[key] = f"no usable RePIC data at {root}: {str(exc).splitlines()[0]}"
        found = self._loaded[key]
        if isinstance(found, str):
            return found
        if found.sha256 != identity.repic.sha256.model_dump():
            return f"the RePIC files at {root} are not the run's (their sha256 differ)"
        if Source(str(root), root, found.samples, "").samples_sha256() != identity.data.samples_sha256:
            return f"the RePIC samples loaded from {root} are not the run's (their fingerprint differs)"
        return found


def against_repic_data(task: TaskRun, data: RepicSet) -> Iterator[tuple[str, str, LoggedSample | None]]:
    """(field, message, record) where the log differs from the task's RePIC data: a sample missing or unknown, or a
    record's query image, ground truth, candidate pool (with the display names the model was shown), caption
    request, or a shown concept that the database does not have."""
    expected = {sample.sample_id: (position, sample) for position, sample in enumerate(data.samples)}
    logged = {s.record.sample_id for s in task.samples}
    if missing := sorted(set(expected) - logged):
        yield "file", f"sample(s) {', '.join(missing)} of the RePIC query file missing from the log", None
    pool, concepts = data.pool(), data.database.concept_dict
    for sample in task.samples:
        record = sample.record
        found = expected.get(record.sample_id)
        if found is None:
            yield f"{RECORD_KEY}.sample_id", f"not a sample of {task.name}'s query file at {data.root}", sample
            continue
        position, truth = found
        wanted = {"image": truth.image, "gt": list(truth.gt), "request": caption_request(position)}
        for name, value in wanted.items():
            if getattr(record, name) != value:
                yield f"{RECORD_KEY}.{name}", f"{getattr(record, name)!r}, the RePIC data's is {value!r}", sample
        if differs := _pool_differences(record, pool):
            yield f"{RECORD_KEY}.pool", f"differs from the RePIC data's candidate pool: {differs}", sample
        if unknown := [key for key in record.shown if key not in concepts]:
            yield f"{RECORD_KEY}.shown", f"{unknown} are not concepts of the database", sample


def _pool_differences(record: RepicRecord, pool: dict[str, str]) -> str:
    """The keys a record's pool has wrong (absent, extra, or another display name); "" when it is the data's."""
    keys = sorted(set(record.pool) | set(pool))
    wrong = [
        f"{key}: {record.pool.get(key)!r} (data: {pool.get(key)!r})"
        for key in keys
        if record.pool.get(key) != pool.get(key)
    ]
    return "; ".join(wrong)
