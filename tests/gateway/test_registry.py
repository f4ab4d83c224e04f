"""Every registered protocol has a codec module with the contract the gateway relies on."""

import pytest

from devices.protocols import PROTOCOLS


@pytest.mark.parametrize("key", sorted(PROTOCOLS))
def test_codec_module_has_the_contract(key):
    codec = PROTOCOLS[key].load_codec()
    for name in ("split_frames", "decode", "encode_reply"):
        assert callable(getattr(codec, name)), f"{key}: {name}"
    frames, rest, discarded = codec.split_frames(b"")
    assert (frames, rest, discarded) == ([], b"", 0)
