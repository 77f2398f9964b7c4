"""The edge agent's exceptions: one root, sorted into transient (back off, retry) and fatal.

Fatal errors carry ``advice``: what the operator must do, because retrying will not help.
"""
from __future__ import annotations


class EdgeError(Exception):
    """Root of every error the edge package raises on purpose."""

    def __init__(self, message: str, *, advice: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.advice = advice
        self.detail = detail

    def __str__(self) -> str:
        text = self.message
        if self.detail:
            text += f" ({self.detail})"
        if self.advice:
            text += f"; {self.advice}"
        return text


class TransientError(EdgeError):
    """Expected to clear by itself (broker down, adapter busy): back off and retry."""


class FatalError(EdgeError):
    """Retrying will not help; ``advice`` tells the operator what to change."""


class NoBluetoothAdapter(FatalError):
    def __init__(self, adapter: str, detail: str = "") -> None:
        super().__init__(
            f"no Bluetooth adapter {adapter!r}",
            advice="check `bluetoothctl list` / `hciconfig`, that bluetoothd runs, and the "
            "[ble] adapter key in the config",
            detail=detail,
        )
        self.adapter = adapter


class NoMonitorInterface(FatalError):
    def __init__(self, interface: str, detail: str = "") -> None:
        super().__init__(
            f"no monitor-mode Wi-Fi interface {interface!r}",
            advice=f"create it, e.g. `iw phy phy0 interface add {interface} type monitor && "
            f"ip link set {interface} up`, and check the [wifi] interface key",
            detail=detail,
        )
        self.interface = interface


class CapturePermissionDenied(FatalError):
    def __init__(self, what: str, detail: str = "") -> None:
        super().__init__(
            f"permission denied opening {what}",
            advice="run the service with CAP_NET_RAW and CAP_NET_ADMIN (see "
            "deploy/mallsense-edge.service) or as root",
            detail=detail,
        )


class BrokerAuthError(FatalError):
    def __init__(self, host: str, username: str | None, detail: str = "") -> None:
        super().__init__(
            f"broker {host} refused the credentials of user {username!r}",
            advice="check [mqtt] username/password (or the client certificate) against the "
            "broker's password file and ACL for this gateway",
            detail=detail,
        )
        self.host = host
        self.username = username


class BrokerUnavailable(TransientError):
    """The broker cannot be reached right now; the spool keeps every batch meanwhile."""


class SiteSecretMissing(FatalError):
    def __init__(self, path: str, detail: str = "") -> None:
        super().__init__(
            f"site secret missing or unreadable: {path}",
            advice="provision the gateway (the secret file holds at least 16 random bytes, "
            "mode 0600), or fix [privacy] secret_file",
            detail=detail,
        )


class ConfigError(FatalError):
    """A config file is invalid; ``problems`` lists (key path, why) pairs, all of them."""

    def __init__(self, path: str, problems: list[tuple[str, str]]) -> None:
        lines = "; ".join(f"{key}: {why}" for key, why in problems)
        super().__init__(f"invalid config {path}: {lines}", advice="fix the keys named above")
        self.path = path
        self.problems = problems


class CaptureFileError(FatalError):
    """A pcap/pcapng file is unreadable or has a link type we do not parse."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"cannot replay capture {path}", detail=detail,
                         advice="give a classic pcap or pcapng with link type 127, 256 or 272")
        self.path = path
