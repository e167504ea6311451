"""The site's files without a browser: byte-identical rebuilds, nothing from the network, provenance
and reproduce commands, the index's claims, and the folder rules."""

import json
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from alignbench.cli import DEFAULT_SEEDS, cli
from alignbench.errors import AlignbenchError
from alignbench.plugins import load_registry
from alignbench.publish import build_site
from alignbench.store import ResultStore
from alignbench.submissions import known_metrics_of

COMMITTED = Path(__file__).parent.parent.parent / "leaderboards"


def files(site: Path) -> dict[str, bytes]:
    return {str(p.relative_to(site)): p.read_bytes() for p in sorted(site.rglob("*")) if p.is_file()}


def test_the_same_inputs_give_byte_identical_sites(committed_site, tiny_site, tmp_path):
    again = CliRunner().invoke(cli, ["publish", "--out", str(tmp_path / "committed"), "--leaderboards", str(COMMITTED)])
    assert again.exit_code == 0, again.output
    assert files(tmp_path / "committed") == files(committed_site.out)
    tiny = CliRunner().invoke(cli, ["publish", "--leaderboards", str(tiny_site.leaderboards), "--store",
                                    str(tiny_site.store), "--results", str(tiny_site.results), "--out",
                                    str(tmp_path / "tiny")])
    assert tiny.exit_code == 0
    assert files(tmp_path / "tiny") == files(tiny_site.site)


def test_nothing_is_loaded_from_the_network(committed_site):
    """No src/href to another host; no @import or url() in the CSS (the browser tests also watch the
    requests the pages make)."""
    for path in committed_site.files:
        if path.suffix in (".html", ".css", ".js"):
            text = path.read_text()
            assert not re.search(r'(src|href)="(https?:)?//', text), path
            assert "@import" not in text and "url(" not in text, path
    for figure in (committed_site.out / "figures").iterdir():
        assert not re.search(r'(xlink:href|href)="(https?:)?//', figure.read_text()), figure


def test_the_site_has_a_page_per_dataset_and_the_raw_files(committed_site):
    datasets = sorted(p.stem for p in COMMITTED.glob("*.json") if "cells" in json.loads(p.read_text()))
    assert sorted(p.name for p in committed_site.pages) == sorted(["index.html"] + [f"{d}.html" for d in datasets])
    for dataset in datasets:
        for suffix in (".json", ".csv", ".md"):
            assert (committed_site.out / "data" / f"{dataset}{suffix}").read_bytes() == \
                (COMMITTED / f"{dataset}{suffix}").read_bytes()
    assert committed_site.size_bytes < 5 * 2**20


def test_the_index_states_the_three_seed_claims_from_the_data(committed_site):
    html = (committed_site.out / "index.html").read_text()
    claims = html.split('<section id="claims">', 1)[1].split("</section>", 1)[0]
    for claim in ("seed 000", "seed 001", "seed 002"):
        assert f"<td>{claim}</td>" in claims
    for dataset in ("synthetic-correlated", "fashion-mnist", "synthetic-gmm"):
        payload = json.loads((COMMITTED / f"{dataset}-robustness.json").read_text())
        held = sum(check["holds"] is True for check in payload["claim_seed_001"])
        rows = [r for r in claims.split("<tr>") if f"<td>seed 001</td><td>{dataset}</td>" in r]
        assert len(rows) == len(payload["claim_seed_001"]) and sum('class="holds"' in r for r in rows) == held
    assert 'href="synthetic-correlated.html#robustness"' in claims
    assert 'href="figures/fashion-mnist-spectra.svg"' in claims


def test_local_rows_get_the_stores_provenance_and_a_command_that_reproduces_them(tiny_site, tmp_path):
    html = (tiny_site.site / "synthetic-correlated.html").read_text()
    section = html.split('<details id="prov-procrustes">', 1)[1].split("</details>", 1)[0]
    with ResultStore(tiny_site.store) as store:
        records = [r for r in store.records() if r.aligner == "procrustes"]
    assert len(records) == 9 and all(r.key in section for r in records)
    assert "&quot;numpy&quot;" in section  # the environment the cells ran in
    command = section.split("<pre><code>", 1)[1].split("</code></pre>", 1)[0]
    command = command.replace("&quot;", '"').replace("&#x27;", "'").replace("&amp;", "&")
    args = shlex.split(command)
    assert args[:2] == ["alignbench", "run"] and "--param" in args  # the tiny dataset's non-default parameters
    # Run it: the same cells, under the same keys, with the same numbers.
    store = tmp_path / "again.sqlite"
    result = CliRunner().invoke(cli, args[1:] + ["--store", str(store), "--out", str(tmp_path / "boards")])
    assert result.exit_code == 0, result.output
    with ResultStore(store) as again:
        fresh = {r.key: r.metrics for r in again.records()}
    assert {r.key: r.metrics for r in records} == {k: v for k, v in fresh.items() if k in {r.key for r in records}}
    assert {r.key for r in records} <= set(fresh)


def test_without_a_store_the_page_says_where_provenance_is(committed_site):
    html = (committed_site.out / "synthetic-gmm.html").read_text()
    assert "publish with <code>--store</code> to show it" in html
    assert "alignbench run --dataset synthetic-gmm --aligner nullspace --anchors 0,5,10,25,100,500 --seeds 0,1,2" in html


def test_a_store_with_other_numbers_lends_no_provenance(tiny_site, tmp_path):
    registry = load_registry()
    with ResultStore(tiny_site.store) as store:
        records = store.records()
    changed = [r.__class__(**{**r.__dict__, "metrics": {**r.metrics, "mean_R@1": 0.0}}) if r.status == "ok" else r
               for r in records]
    report = build_site(tiny_site.leaderboards, tmp_path / "site", store_records=changed,
                        known_metrics=known_metrics_of(registry), seeds=DEFAULT_SEEDS)
    assert report.store_disagreements == sum(r.status == "ok" and r.metrics["mean_R@1"] != 0.0 for r in records) > 0
    html = (tmp_path / "site" / "synthetic-correlated.html").read_text()
    assert not any(r.key in html for r in records if r.status == "ok" and r.metrics["mean_R@1"] != 0.0)


def test_publish_refuses_a_folder_it_did_not_make_and_replaces_one_it_did(tmp_path):
    registry = load_registry()
    known = known_metrics_of(registry)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(AlignbenchError, match="did not write; pass an empty or new directory"):
        build_site(COMMITTED, foreign, known_metrics=known, seeds=DEFAULT_SEEDS)
    assert (foreign / "notes.txt").read_text() == "keep me"
    site = tmp_path / "site"
    build_site(COMMITTED, site, known_metrics=known, seeds=DEFAULT_SEEDS)
    (site / "stale.html").write_text("from an older publish")
    build_site(COMMITTED, site, known_metrics=known, seeds=DEFAULT_SEEDS)
    assert not (site / "stale.html").exists() and (site / "index.html").exists()


def test_without_chromium_the_browser_tests_are_told_how_to_get_it(monkeypatch, tmp_path):
    from alignbench.publish.screenshot import CHROMIUM_ENV, find_chromium

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(CHROMIUM_ENV, raising=False)
    with pytest.raises(AlignbenchError, match="apt-get install chromium"):
        find_chromium()


def test_a_submission_under_another_setting_gets_a_page_of_its_own(tiny_site, tmp_path):
    """Rows run under other dataset parameters never join the local table (mteb #5228): both
    settings get a page, named by setting, and the index links both."""
    from alignbench.runner import Runner, Sweep
    from alignbench.submissions import export_payload

    seeds = DEFAULT_SEEDS
    name, params = "synthetic-correlated", {"n_items": 200, "dim_x": 16, "dim_y": 16, "noise": 0.1}
    store_path = tmp_path / "other.sqlite"
    with ResultStore(store_path) as store:
        Runner(load_registry(), store).run(Sweep(aligners=[("lstsq", {})], datasets=[(name, params)],
                                                 levels=[5], seeds=seeds))
        records = store.records()
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "other.json").write_text(json.dumps(export_payload(records, {"name": "B"})))
    registry = load_registry()
    report = build_site(tiny_site.leaderboards, tmp_path / "site", results=tmp_path / "results",
                        known_metrics=known_metrics_of(registry), seeds=seeds)
    assert report.rejected == [] and len(report.accepted) == 1
    pages = sorted(p.name for p in report.pages if p.name != "index.html")
    assert len(pages) == 2 and all(re.fullmatch(r"synthetic-correlated-[0-9a-f]{8}\.html", p) for p in pages)
    index = (tmp_path / "site" / "index.html").read_text()
    for page in pages:
        assert f'href="{page}"' in index
    for href in re.findall(r'(?:href|src)="([^"#]+)', "".join((tmp_path / "site" / p).read_text() for p in pages)):
        assert (tmp_path / "site" / href).is_file(), href


def test_each_seed_001_verdict_is_published_as_it_was_decided():
    from alignbench.publish.pages import robustness_section

    checks = [{"holds": value, "perturbation": f"drop({side})", "metric": "mean_R@1", "anchors": 100}
              for value, side in ((True, "text"), (False, "image"), (None, "audio"))]
    html = robustness_section("toy", {"claim_seed_001": checks, "summary": []})
    assert "<li>holds: drop(text)" in html and "<li>does not hold: drop(image)" in html
    assert "<li>undecided: drop(audio)" in html


def test_each_page_shows_what_the_fits_chose_from_the_json(committed_site, tiny_site):
    payload = json.loads((COMMITTED / "synthetic-correlated.json").read_text())
    chosen = {c["seed"]: c["fitted"] for c in payload["fitted"] if c["aligner"] == "nullspace" and c["anchors"] == 25}
    assert sorted(chosen) == [0, 1, 2] and len({c["dim"] for c in chosen.values()}) == 1
    html = (committed_site.out / "synthetic-correlated.html").read_text()
    table = html.split('<table class="sortable" data-table="fitted">', 1)[1].split("</table>", 1)[0]
    row = next(line for line in table.splitlines() if 'data-sort="nullspace"' in line and ">dim<" in line)
    assert re.findall(r"<td[^>]*>([^<]*)</td>", row)[4] == str(chosen[0]["dim"])  # choice, then levels 0 5 10 25
    # A submitted row brings the choices its file recorded.
    submitted = (tiny_site.site / "synthetic-correlated.html").read_text().split('data-table="fitted">', 1)[1]
    assert "lstsq [Ada Example]" in submitted.split("</table>", 1)[0]


def test_each_page_says_how_large_the_splits_were_as_the_markdown_does(tiny_site):
    # TINY: 200 items with 5 texts each, halved into train and test.
    payload = json.loads((tiny_site.leaderboards / "synthetic-correlated.json").read_text())
    [(setting_id, sizes)] = payload["split_sizes"].items()
    assert sizes == [{"test": [100, 500], "train": [100, 500]}]
    said = ("test 100 items and 500 texts (a random ranking&#x27;s mean R@1: 1%); train 100 items and 500 texts, "
            "the pool the anchors are drawn from")
    html = (tiny_site.site / "synthetic-correlated.html").read_text()
    assert f"<dt>splits</dt><dd>{said}</dd>" in html
    assert "- splits: " + said.replace("&#x27;", "'") in (tiny_site.leaderboards / "synthetic-correlated.md").read_text()
