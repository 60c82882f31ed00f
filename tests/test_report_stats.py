"""Statistics that say what they are, comparisons that say what the run count allows, and result tables that read
back as the runs they came from (real Parquet files, real rliable and scipy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from td3exp.report.aggregate import compare, summarize
from td3exp.report.criteria import evaluate
from td3exp.report.dataset import read_table, round_significant, write_table
from td3exp.report.gate import load_gate
from td3exp.report.plots import alert_thresholds
from td3exp.report.runs import Run, Series
from td3exp.report.stats import compare_go_counts, estimate, paired_sign_test, probability_of_improvement


def test_few_runs_give_the_mean_and_range_never_an_iqm_or_ci() -> None:
    e = estimate(np.array([1.0, 2.0, 9.0]))
    assert (e.statistic, e.interval, e.n) == ("mean", "range", 3)
    assert (e.point, e.low, e.high) == (4.0, 1.0, 9.0)
    assert str(e) == "mean 4, range [1, 9] (n=3)"


def test_enough_runs_give_the_iqm_with_a_bootstrap_ci() -> None:
    values = np.array([0.0, 10.0, 11.0, 12.0, 13.0, 14.0, 100.0, 15.0])
    e = estimate(values, reps=500)
    assert (e.statistic, e.interval, e.n) == ("IQM", "95% CI", 8)
    assert e.point == pytest.approx(np.mean(np.sort(values)[2:6]))  # the middle half: outliers do not move it
    assert values.min() <= e.low < e.point < e.high <= values.max() and e.high - e.low < 100


def test_probability_of_improvement_needs_enough_runs_and_says_when_it_is_clear() -> None:
    assert probability_of_improvement(np.arange(3.0), np.arange(3.0) + 10) is None
    clear = probability_of_improvement(np.arange(10.0) + 100, np.arange(10.0), reps=500)
    assert clear is not None and clear.probability == 1.0 and clear.distinguishable
    noise = probability_of_improvement(np.arange(10.0), np.arange(10.0) + 0.5, reps=500)
    assert noise is not None and not noise.distinguishable and noise.low < 0.5 < noise.high


def test_fisher_says_three_seeds_cannot_separate_go_counts() -> None:
    three = compare_go_counts(3, 3, 0, 3)
    assert three.p == pytest.approx(0.1) and three.smallest_p == pytest.approx(0.1) and not three.distinguishable
    nine = compare_go_counts(9, 9, 0, 9)
    assert nine.p == pytest.approx(2 / 48620) and nine.distinguishable


def run(label: str, seed: int, go: bool, final_return: float, episodes: int = 10, **config) -> Run:
    steps = np.arange(1, 201) * 10
    scalars = {
        "grad/actor_cnn": Series(steps, np.full(200, 1.0 if go else 1e6)),
        "eval/return": Series(np.array([2000]), np.array([final_return])),
        "alerts/critical": Series(steps, np.zeros(200)),
    }
    full = {"seed": seed, "eval": {"episodes": episodes}, "clip": {"max_norm": None}, **config}
    return Run(f"memory/{label}/{seed}", label, full, scalars, 2000, 2000)


def test_comparisons_between_conditions_that_differ_in_one_value() -> None:
    gate = load_gate("seed")
    gate.q_abs_max = gate.critic_loss_mean_max = gate.actor_loss_max_growth = None
    runs = [run("clip=none", s, go=False, final_return=-100.0 + s) for s in range(6)]
    runs += [run("clip=norm1", s, go=True, final_return=500.0 + s, clip={"max_norm": 1.0}) for s in range(6)]
    runs += [run("other", s, go=True, final_return=0.0, clip={"max_norm": 1.0}, reward={"w": 2}) for s in (10, 11, 12)]
    comparisons = compare([evaluate(r, gate) for r in runs], reps=300)
    assert [(c.a, c.b, c.difference) for c in comparisons] == [
        ("clip=none", "clip=norm1", "clip.max_norm: None vs 1.0"),
        ("clip=norm1", "other", "reward.w: None vs 2"),
    ]
    first = comparisons[0]  # seeds 0-5 in both: six seed pairs, compared pair by pair
    assert str(first.go) == "0/6 vs 6/6 GO, sign test on 6 seed pairs (B ahead in 6, A in 0) p = 0.031 (floor 0.031)"
    assert "GO counts differ beyond seed noise" in first.conclusion
    assert "final returns differ beyond seed noise (B ahead in 6, A in 0 of 6 seed pairs" in first.conclusion
    assert "final returns not compared (no seed pairs and fewer than 5 runs" in comparisons[1].conclusion


def test_seed_matched_runs_are_compared_in_pairs_not_as_independent_runs() -> None:
    """5 GO against 0 over the same five seeds: Fisher (independent runs) gives p = 0.0079; the five seed pairs allow
    no p below 2 / 2**5 = 0.0625, and the report says so."""
    gate = load_gate("seed")
    gate.q_abs_max = gate.critic_loss_mean_max = gate.actor_loss_max_growth = None
    runs = [run("clip=none", s, go=False, final_return=float(s)) for s in range(5)]
    runs += [run("clip=norm1", s, go=True, final_return=s + 0.5, clip={"max_norm": 1.0}) for s in range(5)]
    (comparison,) = compare([evaluate(r, gate) for r in runs], reps=300)
    assert comparison.go.p == pytest.approx(0.0625) and not comparison.go.distinguishable
    assert "5 seed pairs cannot give p < 0.05 (floor p = 0.062)" in comparison.conclusion
    assert "final returns not distinguishable from seed noise (B ahead in 5, A in 0 of 5 seed pairs" \
        in comparison.conclusion and comparison.improvement is None  # no bootstrap over paired runs


def test_the_paired_sign_test_counts_only_discordant_pairs() -> None:
    test = paired_sign_test([True, True, False, True], [False, False, False, True])
    assert (test.wins, test.losses, test.ties, test.n) == (2, 0, 2, 4)
    assert test.p == pytest.approx(0.5) and test.floor == pytest.approx(0.125)
    assert paired_sign_test([1.0, 2.0, 3.0], [0.0, 1.0, 2.0]).p == pytest.approx(0.25)


def test_too_few_eval_episodes_are_flagged() -> None:
    runs = [run("clip=none", s, go=True, final_return=float(s), episodes=1) for s in range(5)]
    returns = next(s for s in summarize(runs, reps=200) if s.metric == "final eval/return")
    assert returns.estimate is not None and returns.estimate.statistic == "IQM"
    assert returns.flags == ["1 eval episode(s) per run (< 5): too few to compare"]


def test_alert_thresholds_come_from_each_runs_saved_config() -> None:
    a = run("a", 0, True, 0.0, monitor={"thresholds": {"actor_cnn": {"warning": 123.0, "critical": 456.0}}})
    b = run("b", 0, True, 0.0, monitor={"thresholds": {"actor_cnn": {"warning": 1e4, "critical": 5e4}}})
    assert alert_thresholds([a, b], "actor_cnn") == {"warning": {123.0, 1e4}, "critical": {456.0, 5e4}}
    assert alert_thresholds([a], "critic") == {"warning": set(), "critical": set()}


def test_a_table_reads_back_as_the_same_runs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    runs = [run("clip=none", s, go=s % 2 == 0, final_return=float(s)) for s in range(3)]
    runs[1].scalars["q/q1"] = Series(np.arange(50), rng.lognormal(0, 3, 50).astype(np.float32).astype(float))
    runs[2].scalars["loss/critic"] = Series(np.arange(3), np.array([1.0, np.nan, np.inf]))
    runs[2].provenance = {"commit": "0123456789abcdef", "dirty": True, "device": "cuda", "device_name": "H100"}
    runs[2].notes = ["incomplete: stopped at step 1500 of 2000"]
    write_table(runs, tmp_path / "scalars.parquet")
    back = read_table(tmp_path / "scalars.parquet")
    assert [r.name for r in back] == ["clip=none seed=0", "clip=none seed=1", "clip=none seed=2"]
    for before, after in zip(runs, back, strict=True):
        assert (after.label, after.config, after.total_steps, after.notes, after.provenance) == (
            before.label, before.config, before.total_steps, before.notes, before.provenance)
        assert sorted(after.scalars) == sorted(before.scalars)
        for tag, series in before.scalars.items():  # float32 scalars, as TensorBoard stores them: lossless
            assert np.array_equal(after.scalars[tag].steps, series.steps)
            assert np.array_equal(after.scalars[tag].values, series.values, equal_nan=True)
    assert (back[2].device, back[2].commit) == ("cuda (H100)", "0123456789+dirty")
    gate = load_gate("seed")
    assert [evaluate(r, gate).verdict for r in back] == [evaluate(r, gate).verdict for r in runs]


def test_fewer_significant_bits_stay_within_their_bound() -> None:
    values = np.random.default_rng(0).lognormal(0, 10, 10_000).astype(np.float32)
    values[:4] = [0.0, np.nan, np.inf, -3.0]
    rounded = round_significant(values, 16)
    finite = np.isfinite(values) & (values != 0)
    assert np.max(np.abs(rounded[finite] / values[finite] - 1)) <= 2.0**-16
    assert rounded[0] == 0.0 and np.isnan(rounded[1]) and rounded[2] == np.inf and rounded[3] == -3.0
    assert np.array_equal(round_significant(values, 24), values, equal_nan=True)


def test_performance_profiles_draw_ci_bands_only_with_enough_runs() -> None:
    from td3exp.report.stats import performance_profiles

    taus = np.linspace(-1.0, 11.0, 13)
    profiles, cis = performance_profiles({"five": np.arange(5.0), "three": np.array([1.0, 2.0, 3.0])}, taus, reps=200)
    assert set(profiles) == {"five", "three"} and set(cis) == {"five"}
    assert profiles["three"][0] == 1.0 and profiles["three"][-1] == 0.0  # fraction of runs above each tau
    assert profiles["five"][np.searchsorted(taus, 2.0)] == pytest.approx(0.4)  # runs 3 and 4 score above 2


def test_report_html_is_one_page_with_the_plots(tmp_path: Path) -> None:
    from PIL import Image

    from td3exp.report.html import write_html

    Image.new("RGB", (4, 4), "red").save(tmp_path / "grad_norms.png")
    text = ("# Stability report\n\n| run | verdict |\n|---|---|\n| `clip=none seed=1` | **GO** |\n\n"
            "![g](grad_norms.png)\n")
    page = write_html(text, tmp_path / "report.html").read_text()
    assert "<table>" in page and "<code>clip=none seed=1</code>" in page and 'src="grad_norms.png"' in page
    embedded = write_html(text, tmp_path / "embedded.html", embed=True).read_text()
    assert 'src="data:image/png;base64,' in embedded and 'src="grad_norms.png"' not in embedded


def test_long_condition_labels_stay_distinct_in_the_performance_profiles() -> None:
    """The explosion ablation's labels agree in their first 70 characters; cut there, conditions merged."""
    from td3exp.report.plots import final_returns_by_condition, short_labels

    head = "agent.actor_head=tanh encoder.pixel_scale=raw agent.preactivation_penalty=0.001"
    runs = [Run(f"run/{i}", f"{head} clip={clip} experiments=explosion_ablation",
                {"seed": seed, "clip": clip}, {"eval/return": Series(np.array([1000]), np.array([float(i)]))},
                1000, 1000)
            for i, (clip, seed) in enumerate([("none", 0), ("none", 1), ("norm1", 0), ("auto", 0)])]
    scores = final_returns_by_condition(runs, limit=70)
    assert len(scores) == 3 and all(len(label) <= 70 + len(" (n=2)") for label in scores)
    assert sorted(len(v) for v in scores.values()) == [1, 1, 2]
    assert all(label.startswith("actor_head=tanh pixel_scale=raw") for label in scores)  # keys without prefixes
    short = "agent.actor_head=tanh clip=none experiments=explosion_ablation"
    assert short_labels([short, head + " clip=none"], limit=70)[short] == short  # short enough: unchanged
