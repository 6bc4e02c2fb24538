"""Errors of consents (PIPL art. 29: separate, versioned, revocable): codes, zh-CN + English, what to do."""

from __future__ import annotations

from miaodai.core.errors import ErrorSpec


class ConsentErrors:
    UNKNOWN_KIND = ErrorSpec(
        "CONSENT_UNKNOWN_KIND", 404, "Unknown consent document",
        "没有名为“{kind}”的授权文件。", "There is no consent document called \"{kind}\".",
        "可用的文件：{known}（见 GET /v1/consent-documents）。",
        "Known documents: {known} (see GET /v1/consent-documents).",
    )
    DOCUMENT_NOT_FOUND = ErrorSpec(
        "CONSENT_DOCUMENT_NOT_FOUND", 404, "Consent document version not found",
        "“{kind}”没有 {version} 版本。", "The document \"{kind}\" has no version {version}.",
        "当前版本为 {current_version}，请查看 GET /v1/consent-documents。",
        "The current version is {current_version}; see GET /v1/consent-documents.",
    )
    VERSION_UNKNOWN = ErrorSpec(
        "CONSENT_VERSION_UNKNOWN", 422, "No such document version",
        "“{kind}”没有 {version} 版本，无法同意。", "The document \"{kind}\" has no version {version} to agree to.",
        "请阅读并同意当前版本 {current_version}。", "Read and agree to the current version, {current_version}.",
    )
    VERSION_NOT_CURRENT = ErrorSpec(
        "CONSENT_VERSION_NOT_CURRENT", 409, "Not the current document version",
        "“{kind}”的 {version} 版本不是当前生效版本（当前为 {current_version}）。",
        "Version {version} of \"{kind}\" is not the version in effect (that is {current_version}).",
        "请阅读并同意当前版本 {current_version}。", "Read and agree to the current version, {current_version}.",
    )
    NOT_GRANTED = ErrorSpec(
        "CONSENT_NOT_GRANTED", 404, "Nothing to revoke",
        "您当前没有对“{kind}”的有效授权，无需撤回。", "You have no live consent to \"{kind}\" to revoke.",
        "可在 GET /v1/consents 查看您的授权记录。", "See your consent history at GET /v1/consents.",
    )
    REQUIRED = ErrorSpec(
        "CONSENT_REQUIRED", 403, "Consent required",
        "继续之前需要您阅读并同意：{_titles_zh}。", "Before continuing, read and agree to: {_titles_en}.",
        "请阅读上述文件的当前版本并通过 POST /v1/consents 逐项同意后重试。",
        "Read the current version of each and agree to it through POST /v1/consents, then retry.",
    )
