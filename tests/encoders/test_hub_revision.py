"""Weights named by a hub id record the commit the local Hugging Face cache resolves them to, so that
an updated hub model does not reuse the old model's cached embeddings. Offline: a fake cache folder
(models--org--name/refs/main + snapshots/<commit>/) stands in for the hub, and nothing downloads."""

import pytest

from extras import needs_extra  # tests/support

from alignbench_plugins.encoders.clip import CLIPImageEncoder, CLIPTextEncoder
from alignbench_plugins.encoders.dinov2 import DINOv2Encoder
from alignbench_plugins.encoders.minilm import HUB_ID as MINILM_HUB_ID
from alignbench_plugins.encoders.minilm import MiniLMEncoder

OLD, NEW = "a" * 40, "b" * 40


def fake_hub_model(hub, repo_id, commit):
    folder = hub / f"models--{repo_id.replace('/', '--')}"
    (folder / "snapshots" / commit).mkdir(parents=True, exist_ok=True)
    (folder / "snapshots" / commit / "config.json").write_text("{}")
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text(commit)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)  # a hub id must not resolve as a relative path by accident
    return tmp_path / "hub"


ENCODERS = {
    "clip-image": (lambda: CLIPImageEncoder(), "openai/clip-vit-base-patch32"),
    "clip-text": (lambda: CLIPTextEncoder(), "openai/clip-vit-base-patch32"),
    "dinov2": (lambda: DINOv2Encoder(size="base"), "facebook/dinov2-base"),
    "dinov2 named by hub id": (lambda: DINOv2Encoder(weights="facebook/dinov2-large"), "facebook/dinov2-large"),
    "minilm": (lambda: MiniLMEncoder(weights=MINILM_HUB_ID), MINILM_HUB_ID),
    "minilm, another hub model": (lambda: MiniLMEncoder(weights="sentence-transformers/all-mpnet-base-v2"),
                                  "sentence-transformers/all-mpnet-base-v2"),
}


@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_a_hub_id_records_the_cached_commit_and_an_update_changes_the_identity(hub, encoder):
    make, repo_id = ENCODERS[encoder]
    fake_hub_model(hub, repo_id, OLD)
    before = make().identity()
    assert before["weights"] == {"hub": repo_id, "revision": OLD}
    assert make().identity() == before  # stable while the cache is unchanged
    fake_hub_model(hub, repo_id, NEW)  # the hub model was updated and downloaded again
    after = make().identity()
    assert after["weights"] == {"hub": repo_id, "revision": NEW} and after != before


def test_the_cache_is_found_through_hf_home_too(hub, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    fake_hub_model(tmp_path / "hf-home" / "hub", "openai/clip-vit-base-patch32", NEW)
    assert CLIPImageEncoder().identity()["weights"]["revision"] == NEW


def test_a_model_not_yet_cached_records_no_revision_and_downloads_nothing(hub):
    assert CLIPImageEncoder().identity()["weights"] == {"hub": "openai/clip-vit-base-patch32", "revision": None}
    assert not hub.exists()


def test_local_weights_keep_their_path_fingerprint(tmp_path, hub):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "config.json").write_text("{}")
    weights = DINOv2Encoder(weights=str(tmp_path / "weights")).identity()["weights"]
    assert weights["path"] == str((tmp_path / "weights").resolve()) and weights["files"][0][0] == "config.json"


def test_the_recorded_commit_is_the_snapshot_huggingface_hub_resolves(hub):
    huggingface_hub = needs_extra("huggingface_hub", "encoders")
    fake_hub_model(hub, "facebook/dinov2-small", OLD)
    fake_hub_model(hub, "facebook/dinov2-small", NEW)
    resolved = huggingface_hub.try_to_load_from_cache("facebook/dinov2-small", "config.json", cache_dir=str(hub))
    assert f"/snapshots/{DINOv2Encoder().identity()['weights']['revision']}/" in str(resolved)


def test_local_weights_rewritten_in_place_with_their_old_times_change_the_identity(tmp_path):
    """Same name, same size, same modification time (a re-save within a second, cp -p, rsync -a):
    the identity follows the bytes, so the cache cannot serve embeddings of the old weights."""
    import os

    from alignbench_plugins.encoders.runtime import path_fingerprint

    checkpoint = tmp_path / "weights" / "model.safetensors"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"\x00" * 4096)
    times = (checkpoint.stat().st_atime_ns, checkpoint.stat().st_mtime_ns)
    before = path_fingerprint(checkpoint.parent)
    checkpoint.write_bytes(b"\x01" * 4096)
    os.utime(checkpoint, ns=times)
    after = path_fingerprint(checkpoint.parent)
    assert before["files"][0][:2] == after["files"][0][:2] == ["model.safetensors", 4096]
    assert before != after
    assert after == path_fingerprint(checkpoint.parent)  # stable while the file is unchanged
    assert DINOv2Encoder(weights=str(checkpoint.parent)).identity()["weights"] == after
