"""Rich renderings shared by CLI commands."""

from __future__ import annotations

from rich.panel import Panel

from miaodai.identity.staff_service import NewStaff


def credentials_panel(staff: NewStaff, title: str) -> Panel:
    """A new staff account's initial password and TOTP secret, for the one time they are shown."""
    return Panel(
        f"username  {staff.username}\n"
        f"password  {staff.password}\n"
        f"TOTP secret  {staff.totp_secret}\n"
        f"otpauth URI  {staff.otpauth_uri}\n\n"
        "Shown once and never stored in plaintext: add the secret to an authenticator app now.\n"
        "仅显示一次，请立即保存密码并将密钥添加到身份验证器。",
        title=title, highlight=False,
    )
