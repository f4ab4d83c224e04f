"""Pure protocol codecs (no Django, no I/O, no globals), one module per protocol.

Each module provides:
    split_frames(buf: bytes) -> tuple[list[bytes], bytes, int]
        whole frames found in `buf`, the unconsumed rest (a partial frame), and the number of
        bytes discarded as garbage (before a frame start, or oversized / malformed framing).
    decode(frame: bytes, *, lenient: bool = False) -> list[Message]
        raises FrameError for a frame that must be dropped (bad checksum unless lenient, bad
        length, truncated body); never any other exception.
    encode_reply(msg: Message, **session) -> bytes | None
        the bytes the device expects in answer to `msg` (None: no answer).
    encode_command(cmd: Command) -> bytes   (added with the downlink-command work)

The registry of protocols lives in devices/protocols.py (it also feeds the model choices).
"""
