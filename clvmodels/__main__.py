"""``python -m clvmodels``: the main job on bundled data.

Summarises the CDNOW sample as in Fader, Hardie & Lee (2005) (weeks, same-day purchases
merged, calibration to 1997-09-30 and holdout to 1998-06-30), fits the purchase models
and the Gamma-Gamma spend model by maximum likelihood and prints 12-month CLV. The
``clvmodels`` command (experiments from YAML) will take this over.
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
        "",
        "maximum-likelihood fits (calibration period):",
    ]
    models = {
        "BG/NBD": clvmodels.BGNBD(),
        "Pareto/NBD": clvmodels.ParetoNBD(),
        "MBG/NBD": clvmodels.MBGNBD(),
        "Gamma-Gamma": clvmodels.GammaGamma(),
    }
    for name, model in models.items():
        model.fit(frame)
        params = ", ".join(f"{k} {v:.4g}" for k, v in model.params_.items())
        lines.append(f"  {name:<12} {params}; log-likelihood {model.log_likelihood_:.2f}")
    lines.append("")
    lines.append("holdout repeat transactions, actual vs predicted (39 weeks):")
    lines.append(f"  actual      {int(frame['frequency_holdout'].sum()):,}")
    for name in ("BG/NBD", "Pareto/NBD", "MBG/NBD"):
        predicted = models[name].expected_purchases(frame, 39.0).sum()
        lines.append(f"  {name:<11} {predicted:,.0f}")
    clv = clvmodels.predictive_clv(
        models["BG/NBD"], models["Gamma-Gamma"], frame, horizon="12M", discount_rate=0.1,
        interval=0.9, n_draws=200,
    )  # fmt: skip
    top = clv.sort_values("estimate", ascending=False).head(5)
    lines.append("")
    lines.append(
        f"12-month CLV at 10 % a year (BG/NBD x Gamma-Gamma): total "
        f"{clv['estimate'].sum():,.0f}; top customers (90 % interval):"
    )
    for customer, row in top.iterrows():
        lines.append(
            f"  customer {customer}: {row['estimate']:,.2f} "
            f"({row['lower']:,.2f} .. {row['upper']:,.2f})"
        )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
