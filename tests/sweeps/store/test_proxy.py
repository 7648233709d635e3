"""A lost storage proxy is recognised wherever its gRPC error sits in an exception chain."""

from __future__ import annotations

import grpc
import pytest

from sweeps.store.proxy import ProxyLost, proxy_lost


class _Call(grpc.RpcError):
    """What a failed gRPC call raises: an RpcError with a status code."""

    def __init__(self, code: grpc.StatusCode) -> None:
        super().__init__(code.name)
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code


def _raised_while_handling(first: BaseException, second: BaseException) -> BaseException:
    """``second`` as Python raises it from an ``except`` block handling ``first``."""
    try:
        try:
            raise first
        except BaseException:
            raise second  # noqa: B904 -- the implicit context is what is tested
    except BaseException as exc:
        return exc


def test_an_unavailable_proxy_is_one_line_naming_the_storage() -> None:
    lost = proxy_lost(_Call(grpc.StatusCode.UNAVAILABLE), "grpc://10.0.0.7:13000")
    assert isinstance(lost, ProxyLost)
    message = str(lost)
    assert "\n" not in message
    assert message.startswith("--storage 'grpc://10.0.0.7:13000': the storage proxy stopped")
    assert "re-run the same command" in message


def test_it_is_found_behind_the_error_raised_while_reporting_it() -> None:
    # Optuna's trial loop: its tell fails too, and its `finally` then raises a NameError.
    chained = _raised_while_handling(_Call(grpc.StatusCode.UNAVAILABLE), NameError("state"))
    assert isinstance(proxy_lost(chained, None), ProxyLost)
    caused = RuntimeError("storage call failed")
    caused.__cause__ = _Call(grpc.StatusCode.UNAVAILABLE)
    assert isinstance(proxy_lost(caused, None), ProxyLost)


@pytest.mark.parametrize(
    "error",
    [
        _Call(grpc.StatusCode.NOT_FOUND),  # an answer from a live proxy, not an outage
        grpc.RpcError("no status"),
        ConnectionError("not gRPC"),
    ],
)
def test_other_errors_are_left_as_they_are(error: BaseException) -> None:
    assert proxy_lost(error, "grpc://h:1") is None
    assert proxy_lost(_raised_while_handling(error, KeyError("x")), "grpc://h:1") is None
