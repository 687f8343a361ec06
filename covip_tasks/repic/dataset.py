"""The importer of RePIC's data: a RePIC directory, one concept database and one query file per task.

RePIC's own scripts run from its repository root, and every path in its files is relative to it
(`./data/database_tot/database_2_concepts/Anya.jpg`). So the `repic_*` tasks read a *RePIC directory*: its
`COVIP_DATA_REPIC`, else the task YAML's `dataset_path` unless `default`, else `$COVIP_HOME/repic` (COVIP_HOME
defaults to ~/.cache/covip). Each task YAML names its database and query file relative to that directory, as
RePIC lays them out (`data/database_tot/database_4_concepts/database_mod.json` with
`data/query_tot/4_concept_query_templates.json`, ...). Loading validates both files and every image, and reports
every bad entry at once (file, entry, field).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

from covip.tasks.data.sources import default_data_dir
from covip.tasks.repic.formats import Database, read_database, read_queries

ENV_DATA_REPIC = "COVIP_DATA_REPIC"


def data_root(dataset_path: str | None = None) -> Path:
    """Where the RePIC directory is: COVIP_DATA_REPIC, the YAML's dataset_path, or `$COVIP_HOME/repic`."""
    location = os.environ.get(ENV_DATA_REPIC) or dataset_path or "default"
    return default_data_dir().parent / "repic" if location == "default" else Path(location).expanduser()


def missing_data() -> str | None:
    """Why the RePIC directory cannot be found where a run will look (None when it is there); presence only."""
    root = data_root()
    if root.is_dir():
        return None
    return (
        f"no RePIC data at {str(root)!r}: point {ENV_DATA_REPIC} at a RePIC directory (its repository with the "
        "query images in place), or write the test fixture there with `python -m covip.tasks.repic.fixture DIR`"
    )


@dataclass(frozen=True)
class RepicSample:
    """One query: its image as the query file names it, and its ground-truth concept keys."""

    sample_id: str
    image: str
    gt: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RepicSet:
    """A task's validated data: the database, the samples of its query file, and the files' sha256."""

    root: Path
    bucket: int
    database: Database
    samples: tuple[RepicSample, ...]
    sha256: dict[str, str]

    def pool(self) -> dict[str, str]:
        """The candidate pool (every ground-truth key of the samples) with the display names the model is shown."""
        names = self.database.names()
        return {key: names[key] for sample in self.samples for key in sample.gt}


def load_repic_set(root: Path, database: str, queries: str, bucket: int) -> RepicSet:
    """Read and validate `database` and `queries` (paths relative to the RePIC directory `root`)."""
    if not root.is_dir():
        raise FileNotFoundError(f"no RePIC directory at {root} (set {ENV_DATA_REPIC})")
    database_file, queries_file = root / database, root / queries
    db = read_database(database_file, root)
    samples = tuple(
        RepicSample(f"q{i:04d}", image, keys)
        for i, (image, keys) in enumerate(read_queries(queries_file, root, bucket, db))
    )
    digests = {
        name: sha256(path.read_bytes()).hexdigest()
        for name, path in (("database", database_file), ("queries", queries_file))
    }
    return RepicSet(root, bucket, db, samples, digests)
