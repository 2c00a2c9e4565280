"""``python -m clvmodels``: the main job on bundled data.

Summarises the CDNOW sample as in Fader, Hardie & Lee (2005): weeks, same-day purchases
merged, calibration to 1997-09-30 and holdout to 1998-06-30. The ``clvmodels``
command (experiments from YAML) will take this over.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Print the CDNOW calibration/holdout summary; return the exit code."""
    import clvmodels

    transactions = clvmodels.datasets.load_cdnow("sample")
    frame = clvmodels.calibration_holdout(
        transactions, calibration_end="1997-09-30", holdout_end="1998-06-30",
        amount="amount", time_unit="W",
    )  # fmt: skip
    counts = frame["frequency_cal"].clip(upper=7).value_counts().sort_index()
    repeat = frame.loc[frame["frequency_cal"] > 0, "monetary_value_cal"]
    lines = [
        f"clvmodels {clvmodels.__version__}: CDNOW sample, time unit weeks, same-day "
        "purchases merged",
        "calibration 1997-01-01 .. 1997-09-30, holdout 1997-10-01 .. 1998-06-30",
        f"customers: {len(frame):,}",
        f"repeat transactions: calibration {int(frame['frequency_cal'].sum()):,}, "
        f"holdout {int(frame['frequency_holdout'].sum()):,}",
        "customers by calibration frequency (0..6, 7+): "
        + " ".join(str(int(c)) for c in counts),
        f"T (weeks): {frame['T_cal'].min():.2f} .. {frame['T_cal'].max():.2f}",
        f"monetary value of {len(repeat):,} repeat buyers: mean {repeat.mean():.2f}, "
        f"median {repeat.median():.2f}, max {repeat.max():.2f}",
        f"distinct (frequency, recency, T) patterns: {len(clvmodels.compress(frame)):,}",
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
