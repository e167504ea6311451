"""Results files: export, validation, and merging into the site (one line per rejected file)."""

import json
import re

from pathlib import Path

import pytest
from click.testing import CliRunner

from alignbench.cli import DEFAULT_SEEDS, cli
from alignbench.plugins import load_registry
from alignbench.submissions import SCHEMA, SubmissionError, known_metrics_of, load_submission

COMMITTED = Path(__file__).parent.parent.parent / "leaderboards"


@pytest.fixture(scope="module")
def known():
    return known_metrics_of(load_registry())


def rejected_lines(output: str) -> dict[str, str]:
    return {line.split(":", 1)[0].rsplit("/", 1)[-1]: line for line in output.splitlines() if line.startswith("rejected ")}


def test_export_writes_the_documented_schema_with_full_records(tiny_site):
    payload = json.loads((tiny_site.results / "good.json").read_text())
    assert payload["schema"] == SCHEMA
    assert payload["producer"] == {"name": "Ada Example", "url": "https://example.org/lstsq",
                                   "notes": "a third party's run"}
    assert len(payload["records"]) == len([0, 5, 20]) * len(DEFAULT_SEEDS)
    record = payload["records"][0]
    assert set(record) == {"key", "dataset", "aligner", "anchors", "seed", "status", "config", "metrics",
                           "environment", "message", "fitted"}
    assert record["config"]["aligner"]["name"] == "lstsq" and "alignbench" in record["environment"]
    assert [r["key"] for r in payload["records"]] == sorted(r["key"] for r in payload["records"])


def test_each_bad_file_is_rejected_with_one_line_and_the_rest_publishes(tiny_site):
    assert tiny_site.exit_code == 0, tiny_site.output
    assert "Traceback" not in tiny_site.output
    lines = rejected_lines(tiny_site.output)
    assert sorted(lines) == ["duplicated.json", "fewer-seeds.json", "unknown-version.json"], tiny_site.output
    assert "has seeds [0, 1]" in lines["fewer-seeds.json"] and "--seeds 0,1,2" in lines["fewer-seeds.json"]
    assert "version 99 is not known here" in lines["unknown-version.json"]
    assert "appears again with other numbers" in lines["duplicated.json"]
    assert "1 submissions merged, 3 rejected" in tiny_site.output
    html = (tiny_site.site / "index.html").read_text()
    assert "lstsq [Ada Example]" in html and "submitted by Ada Example" in html
    rejected = html.split('<section id="rejected">', 1)[1].split("</section>", 1)[0]
    for name in lines:  # listed on the site too, by file name (no path of the build machine)
        assert f"<li>{name}: " in rejected
    assert str(tiny_site.results) not in html


def test_submitted_rows_carry_their_producer_and_provenance(tiny_site):
    html = (tiny_site.site / "synthetic-correlated.html").read_text()
    section = html.split('<details id="prov-lstsq--Ada-Example-">', 1)[1].split("</details>", 1)[0]
    assert 'href="data/submissions/good.json"' in section
    assert "url: https://example.org/lstsq" in section and "name: Ada Example" in section
    keys = json.loads((tiny_site.results / "good.json").read_text())["records"]
    assert all(r["key"] in section for r in keys)
    assert (tiny_site.site / "data" / "submissions" / "good.json").read_bytes() == \
        (tiny_site.results / "good.json").read_bytes()


def test_strict_publish_fails_on_a_rejected_file_but_still_writes_the_site(tiny_site, tmp_path):
    result = CliRunner().invoke(cli, ["publish", "--leaderboards", str(tiny_site.leaderboards), "--results",
                                      str(tiny_site.results), "--out", str(tmp_path / "site"), "--strict"])
    assert result.exit_code == 1 and len(rejected_lines(result.output)) == 3
    assert "lstsq [Ada Example]" in (tmp_path / "site" / "index.html").read_text()


def good_payload(tiny_site) -> dict:
    return json.loads((tiny_site.results / "good.json").read_text())


@pytest.mark.parametrize("edit, problem", [
    (lambda p: p.update(schema="alignbench-results/0"), "schema is 'alignbench-results/0'"),
    (lambda p: p.update(producer={"name": ""}), 'non-empty "name"'),
    (lambda p: p["records"][0]["metrics"].update({"mean_R@1": 1.5}), "outside [0, 1]"),
    (lambda p: p["records"][0]["metrics"].update({"i2t_median_rank": -3.0}), "is negative"),
    (lambda p: p["records"][0]["config"]["aligner"]["params"].update({"rcond": 0.5}), "key is not the hash"),
    (lambda p: p["records"][0].pop("config"), "lacks ['config']"),
    (lambda p: p["records"][0].update(anchors="5"), "wrong types for ['anchors']"),
    (lambda p: p["records"][0].update(status="great"), "status 'great'"),
    (lambda p: p["records"][0].update(anchors=-5), "anchors and seed must be >= 0"),
    (lambda p: p["records"][0].update(dataset="../../pwned"), "dataset name '../../pwned' is not a plugin name"),
    (lambda p: p["records"][0].update(aligner="a/b"), "aligner name 'a/b' is not a plugin name"),
    (lambda p: [r.update(metrics={}) for r in p["records"] if r["status"] == "ok"], "status ok but no metric"),
    (lambda p: p["records"][0]["metrics"].update({"i2t_median_rank": 0.5}), "below 1 (ranks start at 1)"),
    (lambda p: p["records"][0]["metrics"].update({"t2i_R@1": 0.9, "t2i_R@5": 0.2}),
     "t2i_R@5 = 0.2 is below t2i_R@1 = 0.9, but recall cannot fall as K grows"),
    (lambda p: p["records"][0].update(fitted=[1]), "wrong types for ['fitted']"),
    (lambda p: p["records"][0]["fitted"].update(k=[1], ok=2), "fitted ['k'] are not finite numbers"),
    (lambda p: p["records"][0]["config"].update(split_sizes={"test": "lots", "train": None}),
     "split_sizes \"{'test': 'lots', 'train': None}\" is not"),
    (lambda p: p["records"][0]["config"]["split_sizes"].update(test=[100, -1]), "with counts >= 0"),
    (lambda p: p["records"][0]["metrics"].update({"alignment_error_anchors": 10**400}), "too large for a float"),
])
def test_validation_names_the_file_and_the_problem_in_one_line(tiny_site, tmp_path, known, edit, problem):
    payload = good_payload(tiny_site)
    edit(payload)
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(SubmissionError) as caught:
        load_submission(path, known, DEFAULT_SEEDS)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message


def test_not_json_and_nan_are_rejected(tmp_path, known):
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": ')
    with pytest.raises(SubmissionError, match=re.escape(f"{broken}: not valid JSON")):
        load_submission(broken, known, DEFAULT_SEEDS)
    nan = tmp_path / "nan.json"
    nan.write_text('{"schema": "alignbench-results/1", "x": NaN}')
    with pytest.raises(SubmissionError, match="NaN is not a number JSON allows"):
        load_submission(nan, known, DEFAULT_SEEDS)


def test_a_submission_that_contradicts_the_store_is_rejected(tiny_site, tmp_path, known):
    """A cell key the local store holds with other numbers: one of the two is wrong."""
    from alignbench.store import ResultStore

    with ResultStore(tiny_site.store) as store:
        local = {r.key: r.metrics for r in store.records()}
    payload = good_payload(tiny_site)
    path = tmp_path / "clash.json"
    path.write_text(json.dumps(payload))
    seen = {payload["records"][0]["key"]: {"mean_R@1": 0.123}, **local}
    with pytest.raises(SubmissionError, match="appears again with other numbers"):
        load_submission(path, known, DEFAULT_SEEDS, seen)
    assert load_submission(path, known, DEFAULT_SEEDS, dict(local)).producer["name"] == "Ada Example"


def test_export_warns_when_publish_would_reject_the_file(sweep_into, tmp_path):
    store = tmp_path / "two-seeds.sqlite"
    sweep_into(store, ["lstsq"], seeds=[0, 1])
    result = CliRunner().invoke(cli, ["export", "--store", str(store), "--out", str(tmp_path / "r.json"),
                                      "--name", "me"])
    assert result.exit_code == 0
    assert "warning: `alignbench publish` would reject it:" in result.output and "has seeds [0, 1]" in result.output


def test_export_never_writes_over_what_is_not_an_earlier_export(sweep_into, tmp_path):
    """--out naming the store itself (or any other file, or a folder) is refused, and the file is kept;
    an earlier export is rewritten."""
    store = tmp_path / "s.sqlite"
    sweep_into(store, ["lstsq"])
    stored = store.read_bytes()
    other = tmp_path / "notes.json"
    other.write_text('{"mine": 1}')
    for out in (store, other, tmp_path):
        result = CliRunner().invoke(cli, ["export", "--store", str(store), "--out", str(out), "--name", "me"])
        assert result.exit_code == 1 and "exists and is not a results file" in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert store.read_bytes() == stored and other.read_text() == '{"mine": 1}'
    under_a_file = CliRunner().invoke(cli, ["export", "--store", str(store), "--out", str(other / "r.json"),
                                            "--name", "me"])
    assert under_a_file.exit_code == 1 and "Traceback" not in under_a_file.output
    [line] = under_a_file.output.strip().splitlines()
    assert str(other) in line and "check that the path is the file or folder meant" in line
    again = tmp_path / "r.json"
    for _ in range(2):
        result = CliRunner().invoke(cli, ["export", "--store", str(store), "--out", str(again), "--name", "me"])
        assert result.exit_code == 0, result.output


@pytest.mark.parametrize("args, message", [
    (["export", "--store", "nowhere.sqlite", "--out", "r.json", "--name", "me"], "no results store at nowhere.sqlite"),
    (["publish", "--leaderboards", "nowhere"], "--leaderboards nowhere is not a directory"),
    (["publish", "--leaderboards", str(COMMITTED), "--results", "nowhere"], "--results nowhere is not a directory"),
    (["publish", "--leaderboards", str(COMMITTED), "--store", "nowhere.sqlite"], "no results store at nowhere.sqlite"),
    (["publish", "--leaderboards", "."], "no leaderboard JSON files in ."),
])
def test_bad_options_are_one_line_errors(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0 and "Traceback" not in result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("Error: ") and message in line


def committed_gmm_with(old: str, new: str) -> str:
    text = (COMMITTED / "synthetic-gmm.json").read_text()
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize("content", [
    '{"cells": [', '{"cells": [5], "settings": {"a": {}}, "dataset": "d"}',
    lambda: committed_gmm_with('"anchors": 5,', '"anchors": 1e999,'),  # no int
    lambda: committed_gmm_with('"mean_R@1": 0.', '"mean_R@1": 1' + "0" * 400 + ', "x": 0.'),  # no float
    lambda: committed_gmm_with('"mean_R@1": 0.001', '"mean_R@1": "0.001"'),  # text
])
def test_a_damaged_leaderboard_json_is_one_line_and_the_site_is_kept(tmp_path, content):
    boards = tmp_path / "boards"
    boards.mkdir()
    for name in ("synthetic-gmm.json", "synthetic-gmm.md"):
        (boards / name).write_bytes((COMMITTED / name).read_bytes())
    (boards / "broken.json").write_text(content if isinstance(content, str) else content())
    result = CliRunner().invoke(cli, ["publish", "--leaderboards", str(boards), "--out", str(tmp_path / "site")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert "broken.json is not a leaderboard JSON" in line
    assert not (tmp_path / "site").exists()


def _first_claim(**changes) -> str:
    payload = json.loads((COMMITTED / "synthetic-gmm-robustness.json").read_text())
    payload["claim_seed_001"][0].update(changes)
    return json.dumps(payload)


@pytest.mark.parametrize("content, problem", [
    ("{", "JSONDecodeError"),
    ("[]", "a JSON list, not an object"),
    ('{"summary": [{"x": 1}]}', "a summary entry lacks aligner"),
    ('{"summary": {"aligner": "a"}}', "summary is not a list of objects"),
    ('{"claim_seed_001": [{"perturbation": "d"}]}', "lacks metric, setting, anchors, geometric, contrastive"),
    (_first_claim(anchors="<script>"), "lacks anchors or has the wrong type"),
    (_first_claim(holds=[1]), "has holds '[1]', not true, false or null"),
    (_first_claim(geometric={"fmap": "x"}), "has a drop that is not a number"),
])
def test_a_robustness_json_of_another_shape_is_one_line_and_the_site_is_kept(tmp_path, content, problem):
    boards = tmp_path / "boards"
    boards.mkdir()
    for name in ("synthetic-gmm.json", "synthetic-gmm.md", "synthetic-gmm-robustness.json"):
        (boards / name).write_bytes((COMMITTED / name).read_bytes())
    publish = ["publish", "--leaderboards", str(boards), "--out", str(tmp_path / "site")]
    assert CliRunner().invoke(cli, publish).exit_code == 0
    (boards / "synthetic-gmm-robustness.json").write_text(content)
    result = CliRunner().invoke(cli, publish)
    assert result.exit_code == 1 and "Traceback" not in result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("Error")]
    # (a file that is not JSON at all is already refused where the leaderboard JSON files are read)
    assert "synthetic-gmm-robustness.json is not a " in line and problem in line
    assert (tmp_path / "site" / "synthetic-gmm.html").exists()


def _rename_first_setting(payload: dict, new_id: str) -> None:
    old_id = sorted(payload["settings"])[0]
    payload["settings"][new_id] = payload["settings"].pop(old_id)
    for entry in (*payload["cells"], *payload.get("fitted", [])):
        if entry["setting"] == old_id:
            entry["setting"] = new_id


@pytest.mark.parametrize("edit, problem", [
    (lambda p: p.update(dataset="../outside/x"), "dataset '../outside/x' is not a dataset name"),
    (lambda p: p.update(dataset=["synthetic-gmm"]), "dataset \"['synthetic-gmm']\" is not a dataset name"),
    (lambda p: _rename_first_setting(p, "<script>alert(1)</script>"),
     "setting id '<script>alert(1)</script>' is not a setting's hex digest"),
    (lambda p: [s.pop("dataset") for s in p["settings"].values()], ": dataset None is not an object"),
    (lambda p: [s["dataset"].pop("source") for s in p["settings"].values()], ": dataset lacks source"),
    (lambda p: [s.update(metrics="retrieval") for s in p["settings"].values()], ": metrics 'retrieval' is not a list"),
    (lambda p: p["settings"].update({"abc": 5}), "setting abc: it is not an object"),
    (lambda p: p.update(split_sizes={s: [{"test": 3}] for s in p["settings"]}), "is not a list of {\"test\""),
    (lambda p: p.update(split_sizes={s: {"test": [1, 2]} for s in p["settings"]}), "is not a list of {\"test\""),
    (lambda p: p.update(split_sizes=[]), "split_sizes is not an object of setting ids"),
])
def test_a_leaderboard_json_the_site_cannot_show_is_one_line(tmp_path, edit, problem):
    """The dataset became a page's file name (../ wrote outside --out), the setting id went into the
    pages as markup, and a setting or split sizes of another shape ended in a KeyError."""
    boards = tmp_path / "boards"
    boards.mkdir()
    payload = json.loads((COMMITTED / "synthetic-gmm.json").read_text())
    edit(payload)
    (boards / "synthetic-gmm.json").write_text(json.dumps(payload))
    result = CliRunner().invoke(cli, ["publish", "--leaderboards", str(boards), "--out", str(tmp_path / "site")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert "synthetic-gmm.json is not a leaderboard JSON" in line and problem in line
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["boards", "synthetic-gmm.json"]


def test_a_setting_id_is_escaped_wherever_a_page_shows_it():
    """Loading refuses such an id; the pages escape it anyway, as they do every other value."""
    from dataclasses import replace

    from alignbench.publish import pages
    from alignbench.publish.sources import _tables_of

    [table] = _tables_of(json.loads((COMMITTED / "synthetic-gmm.json").read_text()))
    tables = [table, replace(table, setting_id="<b>x</b>")]
    links = {(t.dataset, t.setting_id): pages.PageLinks(f"page{i}.html", (), ()) for i, t in enumerate(tables)}
    shown = pages.nav(tables, links) + pages.index_page(tables, links, [], []) + pages.setting_list(tables[1])
    # in the nav, the index (section id and heading) and the setting list
    assert "<b>x</b>" not in shown and shown.count("&lt;b&gt;x&lt;/b&gt;") == 4


def test_a_file_submitted_twice_under_two_names_is_one_submission(tiny_site, tmp_path):
    """A copy merged no record, yet counted as one more submission and was published as one more file."""
    results = tmp_path / "results"
    results.mkdir()
    for name in ("a.json", "b.json"):
        (results / name).write_bytes((tiny_site.results / "good.json").read_bytes())
    result = CliRunner().invoke(cli, ["publish", "--leaderboards", str(tiny_site.leaderboards), "--results",
                                      str(results), "--out", str(tmp_path / "site")])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("duplicate ")]
    assert line == f"duplicate {results / 'b.json'}: the same file as a.json, read once; remove one of them."
    assert "1 submissions merged, 0 rejected, 1 duplicates" in result.output
    assert sorted(p.name for p in (tmp_path / "site" / "data" / "submissions").iterdir()) == ["a.json"]


def test_a_repeated_record_counts_once(tiny_site, tmp_path, known):
    """An exact copy of a cell (same key, same numbers) would have been one more seed in the site's mean."""
    payload = good_payload(tiny_site)
    once = load_submission(_written(tmp_path / "once.json", payload), known, DEFAULT_SEEDS)
    payload["records"].append(json.loads(json.dumps(payload["records"][0])))
    twice = load_submission(_written(tmp_path / "twice.json", payload), known, DEFAULT_SEEDS)
    assert len(twice.records) == len(once.records) == len(payload["records"]) - 1
    seen = {r.key: r.metrics for r in once.records}  # already merged from an earlier file
    assert load_submission(_written(tmp_path / "again.json", payload), known, DEFAULT_SEEDS, seen).records == ()


def _written(path: Path, payload: dict) -> Path:
    path.write_text(json.dumps(payload))
    return path


def test_what_the_fits_chose_travels_with_a_submission_and_older_files_without_it_still_load(tiny_site, tmp_path,
                                                                                            known):
    submission = load_submission(tiny_site.results / "good.json", known, DEFAULT_SEEDS)
    ok = [r for r in submission.records if r.status == "ok"]
    assert ok and all(r.fitted == {"dim": 16} for r in ok)  # lstsq maps into the texts' 16 dimensions
    payload = good_payload(tiny_site)
    for record in payload["records"]:
        del record["fitted"]
    older = tmp_path / "older.json"
    older.write_text(json.dumps(payload))
    assert all(r.fitted == {} for r in load_submission(older, known, DEFAULT_SEEDS).records)


def _every_record(change):
    def edit(payload):
        for record in payload["records"]:
            change(record["config"])
    return edit


@pytest.mark.parametrize("edit, problem", [
    (_every_record(lambda c: [m.pop("params") for m in c["metrics"]]), "metric 'retrieval' lacks params"),
    (_every_record(lambda c: c["dataset"].pop("source")), "dataset lacks source"),
    (_every_record(lambda c: c["dataset"].pop("params")), "dataset lacks params"),
    (_every_record(lambda c: c["aligner"].pop("params")), "aligner lacks params"),
    (_every_record(lambda c: c["aligner"].pop("source")), "aligner lacks source"),
    (_every_record(lambda c: c["aligner"].update(params=[1])), "aligner has params that is not an object"),
    (_every_record(lambda c: c.update(encoders={"image": {"name": "x"}})), "image encoder lacks params"),
    (_every_record(lambda c: c.update(encoders=["x"])), "encoders ['x'] is not an object"),
    (_every_record(lambda c: c.update(anchor_strategy={"a": 1})), "anchor_strategy {'a': 1} is not a string"),
    (_every_record(lambda c: c["metrics"].append("retrieval")), "metrics entry 'retrieval' is not an object"),
])
def test_a_config_the_site_cannot_show_is_rejected_in_one_line(tiny_site, tmp_path, known, edit, problem):
    """Keys rehashed, so only the shape of the config is wrong: every field the site shows is checked."""
    from alignbench.runner import config_key
    from alignbench.store import RUN_ENTRIES

    payload = good_payload(tiny_site)
    edit(payload)
    for record in payload["records"]:
        record["key"] = config_key({k: v for k, v in record["config"].items() if k not in RUN_ENTRIES})
    path = _written(tmp_path / "shape.json", payload)
    with pytest.raises(SubmissionError) as caught:
        load_submission(path, known, DEFAULT_SEEDS)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message, message


def test_a_file_with_a_malformed_config_is_rejected_and_the_others_publish(tiny_site, tmp_path):
    from alignbench.runner import config_key
    from alignbench.store import RUN_ENTRIES

    results = tmp_path / "results"
    results.mkdir()
    (results / "good.json").write_bytes((tiny_site.results / "good.json").read_bytes())
    payload = good_payload(tiny_site)
    for record in payload["records"]:
        record["config"]["aligner"].pop("params")
        record["key"] = config_key({k: v for k, v in record["config"].items() if k not in RUN_ENTRIES})
    _written(results / "bare.json", payload)
    result = CliRunner().invoke(cli, ["publish", "--leaderboards", str(tiny_site.leaderboards), "--results",
                                      str(results), "--out", str(tmp_path / "site")])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert sorted(rejected_lines(result.output)) == ["bare.json"]
    assert "lstsq [Ada Example]" in (tmp_path / "site" / "index.html").read_text()


def test_a_file_nested_too_deeply_is_rejected_in_one_line(tmp_path, known):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SubmissionError) as caught:
        load_submission(deep, known, DEFAULT_SEEDS)
    assert str(caught.value).startswith(f"{deep}: nested too deeply") and "\n" not in str(caught.value)


def test_scores_of_a_metric_the_config_does_not_list_are_rejected(tiny_site, tmp_path, known):
    """Listing only alignment-error skipped retrieval's checks: an R@1 above R@5 would have been published."""
    from alignbench.runner import config_key
    from alignbench.store import RUN_ENTRIES

    payload = good_payload(tiny_site)
    for record in payload["records"]:
        record["config"]["metrics"] = [m for m in record["config"]["metrics"] if m["name"] == "alignment-error"]
        record["key"] = config_key({k: v for k, v in record["config"].items() if k not in RUN_ENTRIES})
        record["metrics"] = {k: v for k, v in record["metrics"].items() if "alignment_error" in k}
    assert load_submission(_written(tmp_path / "fewer.json", payload), known, DEFAULT_SEEDS).records
    for record in payload["records"]:
        if record["status"] == "ok":
            record["metrics"].update({"i2t_R@1": 0.9, "i2t_R@5": 0.1})
    path = _written(tmp_path / "hidden.json", payload)
    with pytest.raises(SubmissionError) as caught:
        load_submission(path, known, DEFAULT_SEEDS)
    message = str(caught.value)
    assert "metrics i2t_R@1, i2t_R@5 are produced by none of its metrics (alignment-error)" in message
    assert message.startswith(f"{path}: ") and "\n" not in message


def test_a_metric_whose_own_check_raises_rejects_the_file_in_one_line(tiny_site, known):
    class Raising(known["retrieval"]):
        @classmethod
        def inconsistencies(cls, values):
            raise RuntimeError("boom")

    path = tiny_site.results / "good.json"
    with pytest.raises(SubmissionError) as caught:
        load_submission(path, {**known, "retrieval": Raising}, DEFAULT_SEEDS)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert "metric 'retrieval' failed in inconsistencies(): RuntimeError: boom" in message


class _GhostMetricPlugin:
    """A metric whose module is not installed: it registers, and fails when loaded."""

    @staticmethod
    @__import__("alignbench").hookimpl
    def alignbench_register_metrics(register):
        register("ghost-metric", "no_such_module_for_alignbench_tests:Ghost")


def test_a_metric_that_fails_to_load_is_left_out_with_a_warning(caplog):
    known = known_metrics_of(load_registry(extra=[_GhostMetricPlugin()]))
    assert "ghost-metric" not in known and "retrieval" in known
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "metric 'ghost-metric'" in warning and "could not be loaded" in warning and "\n" not in warning


def test_a_broken_metric_plugin_leaves_publish_and_export_working(tiny_site, tmp_path, monkeypatch):
    import alignbench.plugins

    real = alignbench.plugins.load_registry
    monkeypatch.setattr(alignbench.plugins, "load_registry",
                        lambda *a, **k: real(*a, **{**k, "extra": [*k.get("extra", ()), _GhostMetricPlugin()]}))
    result = CliRunner().invoke(cli, ["publish", "--leaderboards", str(tiny_site.leaderboards), "--results",
                                      str(tiny_site.results), "--out", str(tmp_path / "site")])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert "1 submissions merged, 3 rejected" in result.output
    result = CliRunner().invoke(cli, ["export", "--store", str(tiny_site.store), "--out", str(tmp_path / "r.json"),
                                      "--name", "me"])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output


def test_an_export_writes_infinite_scores_of_older_stores_as_null(tiny_site, tmp_path):
    """Runs before metrics were checked for infinity stored some; JSON has no infinity."""
    import dataclasses

    from alignbench.store import ResultStore
    from alignbench.submissions import write_export

    with ResultStore(tiny_site.store) as store:
        record = next(r for r in store.records() if r.status == "ok")
    infinite = dataclasses.replace(record, metrics={**record.metrics, "mean_R@1": float("inf"),
                                                    "i2t_MRR": -float("inf")})
    payload = json.loads(write_export([infinite], {"name": "me"}, tmp_path / "r.json").read_text())
    assert payload["records"][0]["metrics"]["mean_R@1"] is None
    assert payload["records"][0]["metrics"]["i2t_MRR"] is None
