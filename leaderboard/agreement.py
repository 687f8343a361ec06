"""Agreement beyond chance: Cohen's kappa for two raters (two judges; a human and the LLM judge) and Fleiss' kappa for
several raters of the same items (the human study).

Cohen's kappa is scikit-learn's (`cohen_kappa_score`). Fleiss' kappa is not in scipy or scikit-learn, so it is
computed here, in the form that lets the number of raters vary from item to item (an item counts when at least two
raters rated it): per item, the share of agreeing rater pairs P_i = (Σ_j n_ij² − n_i) / (n_i (n_i − 1)); P̄ their
mean; chance agreement P_e = Σ_j p_j², with p_j category j's share of all ratings; κ = (P̄ − P_e) / (1 − P_e). With
the same number of raters for every item it is Fleiss' (1971) kappa. Either kappa is undefined (None) when chance
agreement is 1, i.e. every rating falls in one category.
"""

from __future__ import annotations

from collections.abc import Sequence


def share_agreeing(a: Sequence[str], b: Sequence[str]) -> float | None:
    """The share of items the two raters label alike (None when there are none)."""
    pairs = list(zip(a, b, strict=True))
    return sum(x == y for x, y in pairs) / len(pairs) if pairs else None


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters' labels of the same items (None when undefined: no items, or one category)."""
    if len(a) != len(b):
        raise ValueError(f"{len(a)} labels against {len(b)}: kappa needs the same items")
    if len(set(a) | set(b)) < 2:
        return None
    from sklearn.metrics import cohen_kappa_score  # imported here: scikit-learn takes a second to import

    return float(cohen_kappa_score(list(a), list(b)))


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa of a table with one row per item and one column per category (how many raters chose it).

    Rows with fewer than two ratings carry no agreement and are left out; None when no row is left or when chance
    agreement is 1.
    """
    rows = [list(row) for row in counts if sum(row) >= 2]
    if not rows:
        return None
    if len({len(row) for row in rows}) != 1 or any(c < 0 for row in rows for c in row):
        raise ValueError("a Fleiss table needs one non-negative count per category in every row")
    per_item = [(sum(c * c for c in row) - sum(row)) / (sum(row) * (sum(row) - 1)) for row in rows]
    observed = sum(per_item) / len(per_item)
    ratings = sum(sum(row) for row in rows)
    chance = sum((sum(row[j] for row in rows) / ratings) ** 2 for j in range(len(rows[0])))
    if chance == 1:
        return None
    return (observed - chance) / (1 - chance)
