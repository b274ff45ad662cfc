"""The shard writer's own tar members are byte for byte what webdataset's TarWriter (Python's tarfile) writes,
including the members that need a PAX header (long or non-ASCII names), and webdataset reads them back."""
from __future__ import annotations

import io

import webdataset as wds
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.tar_members import TarMembers
from pipeline.writer import TAR_MODE, TAR_MTIME, TAR_USER

KEYS = st.one_of(st.from_regex(r"[a-z0-9_-]{1,40}", fullmatch=True),  # the usual keys
                 st.text(min_size=1, max_size=130).filter(lambda k: "." not in k and "/" not in k and "\0" not in k))
DATA = st.one_of(st.binary(max_size=1500), st.sampled_from([b"", b"x" * 512, b"y" * 511, b"z" * 1024]))
SAMPLES = st.lists(st.tuples(KEYS, st.dictionaries(st.sampled_from(["txt", "json", "ids.npy", "jpg"]), DATA,
                                                   min_size=1)), max_size=6)


def webdataset_bytes(samples: list[tuple[str, dict[str, bytes]]]) -> bytes:
    buffer = io.BytesIO()
    writer = wds.TarWriter(buffer, user=TAR_USER, group=TAR_USER, mode=TAR_MODE, encoder=False, mtime=TAR_MTIME)
    for key, members in samples:
        writer.write({"__key__": key, **members})
    writer.tarstream.close()  # TarWriter.close() would close the BytesIO too
    return buffer.getvalue()


def our_bytes(samples: list[tuple[str, dict[str, bytes]]]) -> bytes:
    buffer = io.BytesIO()
    tar = TarMembers(buffer, user=TAR_USER, group=TAR_USER, mode=TAR_MODE, mtime=TAR_MTIME)
    for key, members in samples:
        for name in sorted(members):
            tar.add(f"{key}.{name}", members[name])
    tar.close()
    assert tar.offset == len(buffer.getvalue())
    return buffer.getvalue()


@settings(max_examples=150, deadline=None)
@given(SAMPLES)
def test_same_bytes_as_webdataset(samples: list[tuple[str, dict[str, bytes]]]) -> None:
    assert our_bytes(samples) == webdataset_bytes(samples)


def test_long_and_non_ascii_names_take_tarfiles_pax_header_and_read_back(tmp_path) -> None:
    samples = [("a" * 120, {"txt": b"long"}), ("café-ünïcode", {"txt": b"accents"}),
               ("k", {"txt": b"", "json": b"{}"})]
    data = our_bytes(samples)
    assert data == webdataset_bytes(samples) and b"path=" in data  # a PAX header was written
    (tmp_path / "t.tar").write_bytes(data)
    read = [(s["__key__"], s["txt"]) for s in wds.WebDataset(str(tmp_path / "t.tar"), shardshuffle=False)]
    assert read == [("a" * 120, b"long"), ("café-ünïcode", b"accents"), ("k", b"")]
