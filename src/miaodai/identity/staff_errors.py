"""Errors of staff accounts and the staff console (stable codes, zh-CN + English, what to do).

Wrong username, wrong password and wrong TOTP code share one code on purpose: the
response must not tell a guesser which factor was right. The audit entry records the
precise reason for the security team.
"""

from __future__ import annotations

from miaodai.core.errors import ErrorSpec


class StaffErrors:
    LOGIN_FAILED = ErrorSpec(
        "STAFF_LOGIN_FAILED", 401, "Staff login failed",
        "用户名、密码或动态验证码不正确（同一网络每小时最多可失败 {limit} 次）。",
        "Username, password or authenticator code is wrong (a network may fail {limit} times an hour).",
        "请核对用户名和密码，并输入身份验证器上当前显示的 6 位验证码。",
        "Check your username and password and enter the 6-digit code your authenticator shows now.",
    )
    TOTP_REUSED = ErrorSpec(
        "STAFF_TOTP_REUSED", 401, "Authenticator code already used",
        "该动态验证码已使用过，不能重复使用。", "This authenticator code has already been used.",
        "请等待身份验证器显示新的验证码后重试。", "Wait for your authenticator to show a new code, then retry.",
    )
    LOGIN_THROTTLED = ErrorSpec(
        "STAFF_LOGIN_THROTTLED", 429, "Too many failed logins from this network",
        "当前网络登录失败次数过多，请于 {retry_at_local}（北京时间）后重试。",
        "Too many failed logins from this network; try again after {retry_at_local} (Beijing time).",
        "账户本身未被锁定：请从公司网络或其他网络登录；如非本人操作请立即联系安全管理员。",
        "The account itself is not locked: log in from the office or another network; if this was not you, "
        "tell the security administrator now.",
    )
    INACTIVE = ErrorSpec(
        "STAFF_ACCOUNT_INACTIVE", 403, "Staff account disabled",
        "该员工账户已停用。", "This staff account is disabled.",
        "如需恢复请联系管理员。", "Ask an administrator to re-enable it if you still need access.",
    )
    UNAUTHENTICATED = ErrorSpec(
        "STAFF_UNAUTHENTICATED", 401, "Staff login required",
        "请使用员工账户登录（会话无效或已过期）。", "Log in with a staff account (the session is missing, invalid or expired).",
        "请通过 POST /v1/staff/login 重新登录后重试。", "Log in again through POST /v1/staff/login and retry.",
    )
    FORBIDDEN = ErrorSpec(
        "STAFF_PERMISSION_DENIED", 403, "Permission denied",
        "您的角色没有“{permission}”权限。", "Your roles do not grant the permission \"{permission}\".",
        "如工作需要，请向管理员申请相应角色。", "Ask an administrator for a role that grants it if your work needs it.",
    )
    USERNAME_TAKEN = ErrorSpec(
        "STAFF_USERNAME_TAKEN", 409, "Username taken",
        "用户名“{username}”已存在。", "The username \"{username}\" already exists.",
        "请换一个用户名。", "Choose another username.",
    )
    INVALID_USERNAME = ErrorSpec(
        "STAFF_INVALID_USERNAME", 422, "Invalid username",
        "用户名“{username}”不合规。", "The username \"{username}\" is not allowed.",
        "用户名须以字母开头，3–64 位小写字母、数字或 . _ -。",
        "Start with a letter; use 3-64 lowercase letters, digits, '.', '_' or '-'.",
    )
    UNKNOWN_ROLE = ErrorSpec(
        "STAFF_UNKNOWN_ROLE", 422, "Unknown role",
        "未知角色：{role}。", "Unknown role: {role}.",
        "可用角色：{known}。", "Known roles: {known}.",
    )
    WEAK_PASSWORD = ErrorSpec(
        "STAFF_PASSWORD_TOO_WEAK", 422, "Password too weak",
        "密码至少需要 {min_length} 个字符。", "The password needs at least {min_length} characters.",
        "请使用更长的密码（建议使用密码管理器生成）。", "Use a longer password (a password manager can generate one).",
    )
    SETUP_REQUIRED = ErrorSpec(
        "STAFF_SETUP_REQUIRED", 403, "First sign-in not finished",
        "该账户须先在运营后台完成首次登录（修改初始密码并绑定身份验证器）。",
        "This account must first finish its first sign-in in the console (change the one-time password and "
        "enrol an authenticator).",
        "请在浏览器中打开 /console/login 完成设置后重试。", "Open /console/login in a browser, finish the setup, then retry.",
    )
    SETUP_EXPIRED = ErrorSpec(
        "STAFF_SETUP_EXPIRED", 401, "First sign-in expired",
        "首次登录设置已超时或已完成。", "The first sign-in setup has expired or is already finished.",
        "请重新登录。", "Sign in again.",
    )
    PASSWORD_UNCHANGED = ErrorSpec(
        "STAFF_PASSWORD_UNCHANGED", 422, "New password equals the old one",
        "新密码不能与初始密码相同。", "The new password must differ from the one-time password.",
        "请设置一个只有您知道的新密码。", "Choose a new password only you know.",
    )
    PASSWORDS_DIFFER = ErrorSpec(
        "STAFF_PASSWORDS_DIFFER", 422, "Passwords do not match",
        "两次输入的新密码不一致。", "The two new passwords do not match.",
        "请重新输入两次相同的新密码。", "Type the same new password twice.",
    )
    TOTP_NOT_CONFIRMED = ErrorSpec(
        "STAFF_TOTP_NOT_CONFIRMED", 422, "Authenticator code wrong",
        "身份验证器验证码不正确，绑定未完成。", "The authenticator code is wrong; the authenticator is not enrolled yet.",
        "请确认已扫描本页二维码，并输入身份验证器当前显示的 6 位验证码。",
        "Make sure you scanned this page's QR code and enter the 6-digit code it shows now.",
    )
    NOT_ON_ONESELF = ErrorSpec(
        "STAFF_NOT_ON_ONESELF", 403, "Not on your own account",
        "不能对自己的账户提出或审批变更。", "You may neither propose nor approve a change to your own account.",
        "请由另外两位管理员处理。", "Ask two other administrators to handle it.",
    )
    STAFF_NOT_FOUND = ErrorSpec(
        "STAFF_NOT_FOUND", 404, "No such staff account",
        "员工账户 {staff_id} 不存在。", "Staff account {staff_id} does not exist.",
        "请在员工列表中核对。", "Check the staff directory.",
    )
    LAST_ADMINISTRATORS = ErrorSpec(
        "STAFF_LAST_ADMINISTRATORS", 409, "Too few administrators would remain",
        "变更后可审批员工变更的在职管理员将少于 {minimum} 人。",
        "After this change fewer than {minimum} active administrators could approve staff changes.",
        "请先增设一位管理员，再停用或撤销此账户的管理员角色。",
        "Add another administrator first, then disable this account or revoke its role.",
    )
    ALREADY_SO = ErrorSpec(
        "STAFF_CHANGE_CHANGES_NOTHING", 409, "The change changes nothing",
        "该账户已是此状态（{what}）。", "The account is already so ({what}).",
        "请刷新员工列表后再操作。", "Reload the staff directory and try again.",
    )
    REASON_REQUIRED = ErrorSpec(
        "STAFF_REASON_REQUIRED", 422, "A reason is required",
        "请说明理由（至少 {min_length} 个字符）。", "Say why (at least {min_length} characters).",
        "写明工单号或原因，审批人将据此判断。", "Give the ticket or the cause: the approver decides on it.",
    )
    ROLE_REQUIRED = ErrorSpec(
        "STAFF_ROLE_REQUIRED", 422, "At least one role",
        "新账户至少需要一个角色。", "A new account needs at least one role.",
        "请勾选该员工工作所需的角色。", "Tick the roles the person's work needs.",
    )
    UNKNOWN_CHANGE = ErrorSpec(
        "STAFF_UNKNOWN_CHANGE", 422, "Unknown change",
        "未知的账户变更：{change}。", "Unknown account change: {change}.",
        "请从页面给出的选项中选择。", "Choose one of the changes the page offers.",
    )
