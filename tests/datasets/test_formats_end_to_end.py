"""The issue's end-to-end run through the CLI, offline: a fixture image folder of real photos, an
OpenCLIP image tower named as CLIP_benchmark names one (model + pretrained checkpoint path), and a
sentence-transformers text encoder. The OpenCLIP model is a TINY RANDOM one built from a model config
(no OpenCLIP weights ship offline), so the run checks the plumbing, not the scores."""

import pytest
from click.testing import CliRunner

from extras import needs_extra  # tests/support

needs_extra("torch", "encoders")
needs_extra("skimage.data", "test")

from alignbench.cli import cli  # noqa: E402
from alignbench.store import ResultStore  # noqa: E402
from format_fixtures import hf_dataset, image_folder, webdataset_shards  # noqa: E402  (tests/support)


def run(tmp_path, *args):
    return CliRunner().invoke(cli, ["run", *args, "--aligner", "procrustes", "--anchors", "4", "--seeds", "0",
                                    "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path),
                                    "--cache-dir", str(tmp_path / "cache")])


def records(tmp_path):
    with ResultStore(tmp_path / "s.sqlite") as store:
        return store.records(status="ok")


def test_image_folder_with_open_clip_and_sentence_transformers(tmp_path):
    needs_extra("open_clip", "openclip")
    from tiny_encoder_weights import tiny_open_clip

    tiny = tiny_open_clip(tmp_path / "open-clip")
    folder = image_folder(tmp_path / "photos", "jsonl", "column")
    args = ["--dataset", "image-folder", "--param", f"image-folder.path={folder}",
            "--image-encoder", "open-clip-image", "--param", f"open-clip-image.model={tiny['config']}",
            "--param", f"open-clip-image.pretrained={tiny['checkpoint']}", "--param", "open-clip-image.device=cpu",
            "--text-encoder", "sentence-transformers", "--param", "sentence-transformers.device=cpu"]
    result = run(tmp_path, *args)
    assert result.exit_code == 0, result.output
    [record] = records(tmp_path)
    assert record.dataset == "image-folder" and record.aligner == "procrustes" and record.anchors == 4
    assert 0.0 <= record.metrics["mean_R@1"] <= 1.0
    board = (tmp_path / "image-folder.md").read_text()
    assert "`open-clip-image`" in board and "`sentence-transformers`" in board
    again = run(tmp_path, *args)  # the finished cell is reported, not recomputed; embeddings are cached
    assert again.exit_code == 0 and "encoding" not in again.output and len(records(tmp_path)) == 1


def test_image_folder_with_hf_image_and_a_sentence_transformers_folder(tmp_path):
    from tiny_encoder_weights import tiny_sentence_transformer, tiny_vision_backbone

    folder = image_folder(tmp_path / "photos", "csv", "folders")
    vit, st = tiny_vision_backbone(tmp_path / "vit", "vit"), tiny_sentence_transformer(tmp_path / "st")
    result = run(tmp_path, "--dataset", "image-folder", "--param", f"image-folder.path={folder}",
                 "--image-encoder", "hf-image", "--param", f"hf-image.weights={vit}", "--param", "hf-image.pooling=mean",
                 "--text-encoder", "sentence-transformers", "--param", f"sentence-transformers.weights={st}")
    assert result.exit_code == 0, result.output
    assert [r.dataset for r in records(tmp_path)] == ["image-folder"]


@pytest.mark.parametrize("fmt", ["webdataset", "hf-dataset"])
def test_shards_and_hf_datasets_run_with_the_default_encoders(tmp_path, fmt):
    if fmt == "hf-dataset":
        needs_extra("datasets", "hf")
        path = hf_dataset(tmp_path / "data", "parquet")
    else:
        path = webdataset_shards(tmp_path / "data")
    result = run(tmp_path, "--dataset", fmt, "--param", f"{fmt}.path={path}")
    assert result.exit_code == 0, result.output
    board = (tmp_path / f"{fmt}.md").read_text()
    assert "`efficientnet-lite0`" in board and "`minilm`" in board  # real packaged weights on real photos


def test_a_wrong_folder_fails_before_any_work_with_the_expected_layout(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run(tmp_path, "--dataset", "image-folder", "--param", f"image-folder.path={tmp_path / 'empty'}")
    assert result.exit_code != 0
    assert "no metadata.jsonl or metadata.csv" in result.output and "Expected the Hugging Face imagefolder" in result.output
    assert "Traceback" not in result.output


def test_an_unreadable_image_in_the_folder_is_one_line_naming_it(tmp_path):
    folder = image_folder(tmp_path / "photos", "jsonl", "column")
    broken = sorted((folder / "images").iterdir())[0]
    broken.write_bytes(b"not an image at all")
    result = run(tmp_path, "--dataset", "image-folder", "--param", f"image-folder.path={folder}")
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    error = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and broken.name in error[0] and "is not a readable image" in error[0], result.output
