"""Unit tests: caption normalisation, image checks, sources (no Ray, no spaCy)."""
from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from pipeline import items as R
from pipeline.images import ImagePolicy, ImageRejected, prepare_image
from pipeline.normalize import CaptionRejected, clean_caption, normalize_caption
from pipeline.sources import coco, img2dataset, read_image, read_items, scenes, table
from pipeline_testdata import bomb_png, jpeg_bytes, png_bytes, write_coco, write_tar
from toolbox.errors import UserError


# --- captions -------------------------------------------------------------------------------------

def test_normalize_nfc_whitespace_controls() -> None:
    assert normalize_caption("  A  dog\t\n runs\x00 fast\u3000 ") == ("A dog runs fast", False)
    assert normalize_caption("cafe\u0301")[0] == "caf\u00e9"  # NFC


def test_normalize_cuts_long_captions_at_a_space() -> None:
    text, cut = normalize_caption("word " * 5000, max_chars=100)
    assert cut and len(text) <= 100 and text.endswith("word")


@pytest.mark.parametrize("raw,reason", [
    ("", R.EMPTY_CAPTION), ("  \t\n ", R.EMPTY_CAPTION), (None, R.MISSING_CAPTION),
    (b"caf\xe9 au lait", R.INVALID_UTF8), ("bad \ud800 surrogate", R.INVALID_UTF8), (42, R.INVALID_CAPTION),
])
def test_bad_captions_are_rejected_with_reason(raw, reason) -> None:
    with pytest.raises(CaptionRejected) as err:
        clean_caption(raw)
    assert err.value.reason == reason


def test_bytes_captions_decode_and_drop_bom() -> None:
    assert clean_caption("\ufeffA cat".encode("utf-8"))[0] == "A cat"


# --- images ---------------------------------------------------------------------------------------

def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_rgb_jpeg_small_enough_passes_through() -> None:
    data = jpeg_bytes((100, 80))
    assert prepare_image(data, ImagePolicy(image_size=256)) == (data, "jpg")


def test_downscale_to_shorter_side_never_upscale() -> None:
    out, ext = prepare_image(jpeg_bytes((800, 600)), ImagePolicy(image_size=256))
    assert ext == "jpg" and _open(out).size == (341, 256)
    small = jpeg_bytes((120, 90), mode="L", color=90)  # grayscale: re-encoded to RGB, not upscaled
    out, _ = prepare_image(small, ImagePolicy(image_size=256))
    image = _open(out)
    assert image.size == (120, 90) and image.mode == "RGB"


@pytest.mark.parametrize("data", [
    jpeg_bytes((300, 300), mode="CMYK", color=(0, 100, 200, 0)),
    png_bytes((300, 280), mode="RGBA"),
    png_bytes((50, 50), mode="P", color=3),
])
def test_odd_modes_become_rgb_jpeg(data: bytes) -> None:
    out, ext = prepare_image(data, ImagePolicy(image_size=256))
    image = _open(out)
    assert ext == "jpg" and image.mode == "RGB" and image.format == "JPEG" and min(image.size) <= 256


def test_image_size_zero_keeps_bytes() -> None:
    for data, ext in ((jpeg_bytes((900, 700)), "jpg"), (png_bytes(), "png")):
        assert prepare_image(data, ImagePolicy(image_size=0)) == (data, ext)


@pytest.mark.parametrize("data,reason", [
    (b"", R.EMPTY_IMAGE),
    (b"<html>not an image</html>", R.NOT_AN_IMAGE),
    (jpeg_bytes((200, 200))[:300], R.CORRUPT_IMAGE),
    (bomb_png(), R.IMAGE_TOO_LARGE),
])
def test_bad_images_rejected_with_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ImageRejected) as err:
        prepare_image(data, ImagePolicy(image_size=256))
    assert err.value.reason == reason
    with pytest.raises(ImageRejected):  # also when passing through: always decoded once
        prepare_image(data, ImagePolicy(image_size=0))


def rotated_jpeg(orientation: int, size: tuple[int, int] = (600, 300)) -> bytes:
    """A JPEG stored `size` (w, h) with a red left half, carrying EXIF `orientation`."""
    image = Image.new("RGB", size, (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, size[0] // 2, size[1]))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue()


@pytest.mark.parametrize("image_size,upright_size", [(0, (300, 600)), (256, (256, 512)), (1000, (300, 600))])
def test_exif_orientation_is_applied_and_dropped_in_every_mode(image_size: int, upright_size) -> None:
    data = rotated_jpeg(6)  # 6: a reader turns the stored image 90 degrees clockwise to show it
    out, ext = prepare_image(data, ImagePolicy(image_size=image_size))
    image = _open(out)
    assert ext == "jpg" and out != data and image.size == upright_size
    assert 0x0112 not in image.getexif()
    top, bottom = image.getpixel((upright_size[0] // 2, 5)), image.getpixel((upright_size[0] // 2, upright_size[1] - 5))
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]  # the red left half is now on top


@pytest.mark.parametrize("image_size", [0, 256])
def test_upright_orientation_tag_still_passes_through(image_size: int) -> None:
    data = rotated_jpeg(1, (200, 100))
    assert prepare_image(data, ImagePolicy(image_size=image_size)) == (data, "jpg")


def test_file_size_limit() -> None:
    with pytest.raises(ImageRejected) as err:
        prepare_image(jpeg_bytes(), ImagePolicy(max_bytes=10))
    assert err.value.reason == R.IMAGE_FILE_TOO_LARGE


# --- sources --------------------------------------------------------------------------------------

def test_coco_items_keys_duplicates_unknown_ids(tmp_path) -> None:
    anns = [{"image_id": 1, "id": 7, "caption": "A dog."}, {"image_id": 1, "id": 7, "caption": "Again."},
            {"image_id": 99, "id": 8, "caption": "No image."}, {"caption": "no ids"}]
    path = write_coco(tmp_path, [], {1: jpeg_bytes()}, anns)
    specs = coco.chunks(path, None, False, 2, "coco", "coco")
    items = [i for s in specs for i in s.items]
    assert [s.name for s in specs] == ["coco-000000.tar", "coco-000001.tar"]
    assert items[0].key == "coco-000000000001-7" and items[0].image.endswith("val/000000000001.jpg")
    assert [i.reject for i in items] == [None, R.DUPLICATE_KEY, R.UNKNOWN_IMAGE_ID, R.INVALID_CAPTION]


def test_coco_unhashable_ids_are_rejects_not_tracebacks() -> None:
    data = {"images": [{"id": [1], "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
            "annotations": [{"image_id": [1], "id": 1, "caption": "A dog."},
                            {"image_id": 2, "id": 2, "caption": "A cat."}]}
    items = coco.coco_items(data, None, "coco")
    assert [i.reject for i in items] == [R.INVALID_CAPTION, None]


def test_coco_pair_labels_are_kept_and_odd_ones_ignored() -> None:
    anns = [{"image_id": 1, "id": 1, "caption": "A dog.", "pair": "1-0"}, {"image_id": 1, "id": 2, "caption": "x",
            "pair": 5}, {"image_id": 1, "id": 3, "caption": "y", "pair": [1]}, {"image_id": 1, "id": 4, "caption": "z"}]
    items = coco.coco_items({"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": anns}, None, "coco")
    assert [i.pair for i in items] == ["1-0", "5", None, None]


@pytest.mark.parametrize("content,message", [
    ("{not json", "unreadable JSON"), ('{"images": []}', "not a COCO captions file"), ("[]", "not a COCO"),
])
def test_coco_bad_files_are_user_errors(tmp_path, content, message) -> None:
    path = tmp_path / "captions_x.json"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        coco.chunks(path, tmp_path, False, 10, "coco")


def test_coco_needs_an_image_folder_unless_text_only(tmp_path) -> None:
    path = tmp_path / "captions_x.json"
    path.write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(UserError, match="--images"):
        coco.chunks(path, None, False, 10, "coco")
    assert coco.chunks(path, None, True, 10, "coco") == []


def test_img2dataset_tar_reading(tmp_path) -> None:
    jpg = jpeg_bytes()
    write_tar(tmp_path / "00000.tar", [
        ("00000/000000000.jpg", jpg), ("00000/000000000.txt", b"A red square."), ("00000/000000000.json", b"{}"),
        ("00000/000000001.jpg", jpg), ("00000/000000001.txt", b"caf\xe9"),
        ("00000/000000002.txt", b"No image here."),
        ("00000/000000003.jpg", jpg), ("00000/000000003.json", json.dumps({"caption": "From json."}).encode()),
        ("00000/000000000.txt", b"Duplicate key."),
    ])
    spec = img2dataset.chunks(tmp_path, "i2d", "cc3m")[0]
    items = read_items(spec)
    assert [i.key for i in items] == ["cc3m-000000000", "cc3m-000000001", "cc3m-000000002", "cc3m-000000003",
                                      "cc3m-000000000"]
    assert [i.reject for i in items] == [None, None, R.MISSING_IMAGE, None, R.DUPLICATE_KEY]
    assert items[3].caption == "From json." and read_image(spec, items[0]) == jpg


def test_img2dataset_truncated_tar_keeps_the_readable_part(tmp_path) -> None:
    jpg = jpeg_bytes()
    members = [(f"{k:09d}.{ext}", data) for k in range(4) for ext, data in (("jpg", jpg), ("txt", b"A cat."))]
    write_tar(tmp_path / "00000.tar", members, cut=2900)
    items = read_items(img2dataset.chunks(tmp_path, "i2d")[0])
    assert items[-1].reject == R.CORRUPT_INPUT and items[0].reject is None


def test_img2dataset_keys_are_unique_across_tars(tmp_path) -> None:
    jpg = jpeg_bytes()

    def sample(key: str) -> list[tuple[str, bytes]]:
        return [(f"{key}.jpg", jpg), (f"{key}.txt", b"A cat.")]

    write_tar(tmp_path / "00000.tar", sample("a/001") + sample("a/002"))
    write_tar(tmp_path / "00001.tar", sample("b/003") + sample("b/001") + sample("c/003") + sample("b/004"))
    write_tar(tmp_path / "00002.tar", sample("004") + sample("005"))
    specs = img2dataset.chunks(tmp_path, "i2d", "cc3m")
    img2dataset.plan(specs, [img2dataset.tar_keys(s.path, s.source) for s in specs])
    assert [s.taken for s in specs] == [{}, {"cc3m-001": "00000.tar"}, {"cc3m-004": "00001.tar"}]
    items = [read_items(s) for s in specs]
    assert [s.n_items for s in specs] == [len(i) for i in items] == [2, 4, 2]
    reasons = [[(i.key, i.reject) for i in tar] for tar in items]
    assert reasons == [[("cc3m-001", None), ("cc3m-002", None)],
                       [("cc3m-003", None), ("cc3m-001", R.DUPLICATE_KEY), ("cc3m-003", R.DUPLICATE_KEY),
                        ("cc3m-004", None)],
                       [("cc3m-004", R.DUPLICATE_KEY), ("cc3m-005", None)]]
    assert items[1][1].detail == "00001.tar: b/001, key first in 00000.tar"
    assert items[1][2].detail == "00001.tar: c/003" and items[2][0].detail.endswith("key first in 00001.tar")


def test_img2dataset_empty_folder_is_a_user_error(tmp_path) -> None:
    with pytest.raises(UserError, match="no .tar files"):
        img2dataset.chunks(tmp_path, "i2d")


def test_scenes_source_reads_a_generated_sample_only(tmp_path) -> None:
    with pytest.raises(UserError, match=f"not a complete scenes sample.*posmask make-scenes --out {tmp_path}"):
        scenes.locate(tmp_path)
    manifest = tmp_path / "scenes_manifest.json"
    for broken in ("[1]", '{"format": "posmask-scenes"}', '{"format": "other", "config": {"seed": 3}}'):
        manifest.write_text(broken)
        with pytest.raises(UserError, match="not a complete scenes sample"):
            scenes.locate(tmp_path)
    manifest.write_text('{"format": "posmask-scenes", "config": {"seed": 3}}')
    assert scenes.locate(tmp_path) == (tmp_path / "train" / "captions.json", tmp_path / "train" / "images", 3)


def test_table_csv_tsv_parquet(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.jpg").write_bytes(jpeg_bytes())
    (tmp_path / "t.csv").write_bytes(b'image,caption\na.jpg,"A dog, running."\na.jpg,caf\xe9\n'
                                     b'a.jpg,too,many,columns\n,Empty path.\n')
    specs = table.chunks(tmp_path / "t.csv", None, False, 10, "table")
    items = specs[0].items
    assert [i.reject for i in items] == [R.MALFORMED_ROW, None, None, R.MISSING_IMAGE]
    assert items[1].caption == b"A dog, running." and items[1].image == str(tmp_path / "a.jpg")
    (tmp_path / "t.tsv").write_text('filepath\ttitle\na.jpg\tHe said "hi" to me.\n', encoding="utf-8")
    items = table.chunks(tmp_path / "t.tsv", None, False, 10, "table")[0].items
    assert items[0].caption == b'He said "hi" to me.'
    pq.write_table(pa.table({"img": ["a.jpg"], "txt": ["A cat."], "id": ["x.1"]}), tmp_path / "t.parquet")
    items = table.chunks(tmp_path / "t.parquet", None, False, 10, "table", image_column="img", caption_column="txt",
                         key_column="id")[0].items
    assert items[0].key == "table-x_1" and items[0].caption == "A cat."
    with pytest.raises(UserError, match="no caption column"):
        table.chunks(tmp_path / "t.parquet", None, False, 10, "table")
    with pytest.raises(UserError, match="--images"):
        table.chunks(tmp_path / "t.parquet", tmp_path / "nope", False, 10, "table", image_column="img",
                     caption_column="txt")


# --- output folder state --------------------------------------------------------------------------

@pytest.mark.parametrize("name,content", [("manifest.json", "[]"), (".work/config.json", "[1, 2]")])
def test_out_with_a_non_object_json_is_refused_in_one_line(tmp_path, name, content) -> None:
    from pipeline.state import check_out

    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text(content)
    with pytest.raises(UserError, match="not a finished or resumable"):
        check_out(tmp_path, {"a": 1}, overwrite=False)
    assert check_out(tmp_path, {"a": 1}, overwrite=True) == "overwrite"
