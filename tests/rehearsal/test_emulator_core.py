"""The emulator's lifecycle: an empty account each time, extensions installed and closed, port freed."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import pytest

from rehearsal.emulator import LOOPBACK, Emulator, EmulatorError


@dataclass
class RecordingExtension:
    name: str
    events: list[str] = field(default_factory=list)
    fail_install: bool = False

    def install(self, emulator: Emulator) -> None:
        self.events.append("install")
        if self.fail_install:
            raise RuntimeError("boom")

    def close(self) -> None:
        self.events.append("close")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((LOOPBACK, port)) == 0


def test_each_emulator_is_an_empty_account_and_frees_its_port() -> None:
    with Emulator() as emu:
        emu.client("s3").create_bucket(Bucket="left-over")
        port = emu.port
        assert _port_open(port)
    assert not _port_open(port)
    with Emulator() as emu:
        assert emu.client("s3").list_buckets()["Buckets"] == []


def test_extensions_are_closed_in_reverse_order_and_on_failed_start() -> None:
    first, second = RecordingExtension("first"), RecordingExtension("second")
    with Emulator(extensions=[first, second]) as emu:
        assert emu.extension("second") is second
        with pytest.raises(EmulatorError, match="no extension 'third'"):
            emu.extension("third")
    assert first.events == ["install", "close"]
    assert second.events == ["install", "close"]

    good, bad = RecordingExtension("good"), RecordingExtension("bad", fail_install=True)
    emu = Emulator(extensions=[good, bad])
    with pytest.raises(RuntimeError, match="boom"):
        emu.start()
    assert good.events == ["install", "close"]  # the installed one was undone
    assert not _port_open(emu.port)


def test_only_one_emulator_per_process() -> None:
    with Emulator(), pytest.raises(EmulatorError, match="already running"):
        Emulator().start()
