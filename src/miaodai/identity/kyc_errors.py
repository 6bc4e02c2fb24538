"""Errors of real-name verification (实名认证): stable codes, zh-CN + English, what to do.

Every way verification can fail has its own code, so an app can show the right screen
and support can read the attempt history. A failed attempt's ``KycAttempt.outcome`` is
its code. Messages never echo the name or ID number back.
"""

from __future__ import annotations

from miaodai.core.errors import ErrorSpec
from miaodai.identity.kyc_providers import CarrierOutcome, FaceOutcome
from miaodai.identity.resident_id import AgeRejection, IdRejection, NameRejection

_FIX_ID_ZH = "请对照身份证核对号码后重新输入。"
_FIX_ID_EN = "Check the number against your ID card and enter it again."
_SUPPORT_ZH = "如有疑问请联系客服 400-000-0000。"
_SUPPORT_EN = "If in doubt, contact support on 400-000-0000."


class KycErrors:
    # --- the ID number as typed --------------------------------------------------------------
    ID_WRONG_LENGTH = ErrorSpec(
        "KYC_ID_WRONG_LENGTH", 422, "ID number has the wrong length",
        "身份证号码应为 18 位。", "A resident ID number has 18 characters.",
        _FIX_ID_ZH, _FIX_ID_EN,
    )
    ID_LEGACY_15_DIGIT = ErrorSpec(
        "KYC_ID_LEGACY_15_DIGIT", 422, "Old 15-digit ID number",
        "15 位的第一代身份证号码已停止使用，请使用 18 位号码。",
        "Old 15-digit ID numbers are no longer accepted; use your 18-digit number.",
        "请输入第二代身份证上的 18 位号码；如仍持有第一代身份证，请先到户籍所在地派出所换领。",
        "Enter the 18-digit number on your second-generation ID card; if you still hold a first-generation card, "
        "renew it at your local police station first.",
    )
    ID_BAD_CHARACTERS = ErrorSpec(
        "KYC_ID_BAD_CHARACTERS", 422, "ID number has invalid characters",
        "身份证号码只能由数字组成，最后一位可以是 X。",
        "An ID number is digits only; the last character may be X.",
        _FIX_ID_ZH, _FIX_ID_EN,
    )
    ID_BAD_CHECKSUM = ErrorSpec(
        "KYC_ID_BAD_CHECKSUM", 422, "ID number check digit does not match",
        "身份证号码校验位不正确，可能有输入错误。",
        "The ID number's check digit does not match; there is probably a typo.",
        _FIX_ID_ZH, _FIX_ID_EN,
    )
    ID_BAD_BIRTH_DATE = ErrorSpec(
        "KYC_ID_BAD_BIRTH_DATE", 422, "ID number has an impossible birth date",
        "身份证号码中的出生日期（第 7–14 位）不是有效日期。",
        "The birth date in the ID number (characters 7-14) is not a possible date.",
        _FIX_ID_ZH, _FIX_ID_EN,
    )
    ID_UNKNOWN_REGION = ErrorSpec(
        "KYC_ID_UNKNOWN_REGION", 422, "ID number has an unknown region code",
        "身份证号码前 6 位的地区代码不存在。", "The region code (first 6 digits) of the ID number does not exist.",
        _FIX_ID_ZH + _SUPPORT_ZH, _FIX_ID_EN + " " + _SUPPORT_EN,
    )
    # --- the name as typed -------------------------------------------------------------------
    NAME_TOO_SHORT = ErrorSpec(
        "KYC_NAME_TOO_SHORT", 422, "Name too short",
        "姓名至少 2 个汉字。", "A name has at least 2 Chinese characters.",
        "请输入身份证上的完整姓名。", "Enter your full name as it appears on your ID card.",
    )
    NAME_TOO_LONG = ErrorSpec(
        "KYC_NAME_TOO_LONG", 422, "Name too long",
        "姓名最多 30 个字符。", "A name has at most 30 characters.",
        "请输入身份证上的姓名，不要填写其他内容。", "Enter only your name as it appears on your ID card.",
    )
    NAME_BAD_CHARACTERS = ErrorSpec(
        "KYC_NAME_BAD_CHARACTERS", 422, "Name has invalid characters",
        "姓名只能包含汉字和少数民族姓名中的间隔点“·”。",
        "A name may contain only Chinese characters and the middle dot '·' of minority names.",
        "请按身份证上的写法输入姓名（不含字母、数字或符号）。",
        "Enter your name exactly as on your ID card (no letters, digits or symbols).",
    )
    NAME_BAD_DOT = ErrorSpec(
        "KYC_NAME_BAD_DOT", 422, "Misplaced middle dot in name",
        "间隔点“·”只能出现在姓名各部分之间，且不能连续。",
        "The middle dot '·' may only separate two parts of a name, once at a time.",
        "请按身份证上的写法输入，例如：阿卜杜·热合曼。", "Type it as on your ID card, e.g. 阿卜杜·热合曼.",
    )
    # --- the age policy ----------------------------------------------------------------------
    AGE_TOO_YOUNG = ErrorSpec(
        "KYC_AGE_TOO_YOUNG", 422, "Below the minimum age",
        "很抱歉，申请人须年满 {min_age} 周岁。", "Sorry, applicants must be at least {min_age} years old.",
        "请于 {eligible_on} 起再来申请；如身份证号码输入有误，请更正后重试。",
        "You can apply from {eligible_on}; if you mistyped your ID number, correct it and retry.",
    )
    AGE_TOO_OLD = ErrorSpec(
        "KYC_AGE_TOO_OLD", 422, "Above the maximum age",
        "很抱歉，本产品仅面向 {min_age}–{max_age} 周岁的申请人。",
        "Sorry, this product is open to applicants aged {min_age} to {max_age}.",
        "如身份证号码输入有误，请更正后重试。", "If you mistyped your ID number, correct it and retry.",
    )
    # --- one identity per person ---------------------------------------------------------------
    ID_ON_OTHER_ACCOUNT = ErrorSpec(
        "KYC_ID_ON_OTHER_ACCOUNT", 409, "ID number verified on another account",
        "该身份证号码已在另一个秒贷账户完成实名认证，一个身份只能认证一个账户。",
        "This ID number is already verified on another Miaodai account; one person may verify one account.",
        "请使用当初注册的手机号登录；如您从未注册过，请联系客服 400-000-0000 核实身份。",
        "Log in with the phone number you registered with; if you never registered, contact support on "
        "400-000-0000 to confirm your identity.",
    )
    ALREADY_VERIFIED = ErrorSpec(
        "KYC_ALREADY_VERIFIED", 409, "Identity already verified",
        "您已完成该步实名认证，无需重复提交。", "You have already completed this verification step.",
        "请查看 GET /v1/kyc 了解下一步。", "See GET /v1/kyc for the next step.",
    )
    FACE_BEFORE_IDENTITY = ErrorSpec(
        "KYC_FACE_BEFORE_IDENTITY", 409, "Identity not verified yet",
        "请先完成姓名和身份证号码的认证，再进行人脸识别。",
        "Verify your name and ID number before the face check.",
        "请先提交 POST /v1/kyc/identity。", "Submit POST /v1/kyc/identity first.",
    )
    # --- carrier three-element check (运营商三要素) ---------------------------------------------
    CARRIER_NAME_ID_MISMATCH = ErrorSpec(
        "KYC_CARRIER_NAME_ID_MISMATCH", 422, "Name and ID number do not match",
        "姓名与身份证号码不一致。", "The name and the ID number do not belong together.",
        "请检查姓名和身份证号码是否有错别字（如同音字）后重试。",
        "Check both for typos (e.g. a similar-sounding character) and retry.",
    )
    CARRIER_PHONE_NOT_OWNER = ErrorSpec(
        "KYC_CARRIER_PHONE_NOT_OWNER", 422, "Phone not registered to you",
        "您登录所用的手机号未登记在您本人名下。", "The phone number you logged in with is not registered in your name.",
        "请使用登记在本人名下的手机号重新登录后再认证。",
        "Log in with a phone number registered in your own name, then verify again.",
    )
    CARRIER_NUMBER_REASSIGNED = ErrorSpec(
        "KYC_CARRIER_NUMBER_REASSIGNED", 422, "Phone number recently re-assigned",
        "您的手机号近期被运营商重新分配（二次号），暂时无法用于认证。",
        "Your carrier re-assigned this phone number recently (二次号), so it cannot be used to verify you yet.",
        "如号码是您新办理的，请到运营商营业厅确认实名登记已更新，或改用其他本人名下的手机号。",
        "If the number is newly yours, ask your carrier to confirm its real-name registration is updated, or use "
        "another number registered in your name.",
    )
    CARRIER_NUMBER_SUSPENDED = ErrorSpec(
        "KYC_CARRIER_NUMBER_SUSPENDED", 422, "Phone number suspended",
        "您的手机号处于停机状态。", "Your phone number is suspended by the carrier.",
        "请缴费或联系运营商恢复服务后重试。", "Top up or ask your carrier to restore service, then retry.",
    )
    CARRIER_TIMEOUT = ErrorSpec(
        "KYC_CARRIER_TIMEOUT", 504, "Carrier check timed out",
        "运营商核验暂时没有响应，本次不计入认证次数。",
        "The carrier did not answer in time; this attempt does not count against your limit.",
        "请稍后重试。", "Retry in a minute.",
    )
    PROVIDER_UNAVAILABLE = ErrorSpec(
        "KYC_PROVIDER_UNAVAILABLE", 503, "Verification service unavailable",
        "核验服务暂时不可用，本次不计入认证次数。",
        "The verification service is unavailable right now; this attempt does not count against your limit.",
        "请稍后重试；如持续出现请联系客服。", "Retry in a few minutes; if it persists, contact support.",
    )
    # --- face liveness and match -------------------------------------------------------------
    FACE_LIVENESS_FAILED = ErrorSpec(
        "KYC_FACE_LIVENESS_FAILED", 422, "Liveness check failed",
        "活体检测未通过。", "The liveness check did not pass.",
        "请在光线充足、网络信号良好的地方，正对镜头并按提示完成动作后重试。",
        "In good light and an area with good signal, face the camera, follow the prompts and retry.",
    )
    FACE_MISMATCH = ErrorSpec(
        "KYC_FACE_MISMATCH", 422, "Face does not match the ID photo",
        "人脸与身份证照片不一致。", "Your face does not match the photo on record for this ID number.",
        "须由身份证本人完成人脸识别；如确为本人，请摘下眼镜帽子后重试，或联系客服 400-000-0000。",
        "The ID card holder must do the face check; if it is you, remove glasses or hat and retry, or contact "
        "support on 400-000-0000.",
    )
    FACE_TIMEOUT = ErrorSpec(
        "KYC_FACE_TIMEOUT", 504, "Face check timed out",
        "人脸识别服务暂时没有响应，本次不计入认证次数。",
        "The face check service did not answer in time; this attempt does not count against your limit.",
        "请在网络信号良好的地方稍后重试。", "Retry in a minute, in an area with good signal.",
    )
    # --- daily limits ------------------------------------------------------------------------
    IDENTITY_ATTEMPTS_EXHAUSTED = ErrorSpec(
        "KYC_IDENTITY_ATTEMPTS_EXHAUSTED", 429, "Too many identity attempts today",
        "今日实名认证次数已用完（每日 {limit} 次）。", "You have used today's {limit} identity verification attempts.",
        "请于 {retry_at}（北京时间）后重试。", "Retry after {retry_at} (Beijing time).",
    )
    FACE_ATTEMPTS_EXHAUSTED = ErrorSpec(
        "KYC_FACE_ATTEMPTS_EXHAUSTED", 429, "Too many face attempts today",
        "今日人脸识别次数已用完（每日 {limit} 次）。", "You have used today's {limit} face verification attempts.",
        "请于 {retry_at}（北京时间）后重试。", "Retry after {retry_at} (Beijing time).",
    )


ID_REJECTIONS: dict[IdRejection, ErrorSpec] = {
    IdRejection.WRONG_LENGTH: KycErrors.ID_WRONG_LENGTH,
    IdRejection.LEGACY_15_DIGIT: KycErrors.ID_LEGACY_15_DIGIT,
    IdRejection.BAD_CHARACTERS: KycErrors.ID_BAD_CHARACTERS,
    IdRejection.BAD_CHECKSUM: KycErrors.ID_BAD_CHECKSUM,
    IdRejection.BAD_BIRTH_DATE: KycErrors.ID_BAD_BIRTH_DATE,
    IdRejection.UNKNOWN_REGION: KycErrors.ID_UNKNOWN_REGION,
}

NAME_REJECTIONS: dict[NameRejection, ErrorSpec] = {
    NameRejection.TOO_SHORT: KycErrors.NAME_TOO_SHORT,
    NameRejection.TOO_LONG: KycErrors.NAME_TOO_LONG,
    NameRejection.BAD_CHARACTERS: KycErrors.NAME_BAD_CHARACTERS,
    NameRejection.BAD_DOT: KycErrors.NAME_BAD_DOT,
}

AGE_REJECTIONS: dict[AgeRejection, ErrorSpec] = {
    AgeRejection.TOO_YOUNG: KycErrors.AGE_TOO_YOUNG,
    AgeRejection.TOO_OLD: KycErrors.AGE_TOO_OLD,
}

CARRIER_FAILURES: dict[CarrierOutcome, ErrorSpec] = {
    CarrierOutcome.NAME_ID_MISMATCH: KycErrors.CARRIER_NAME_ID_MISMATCH,
    CarrierOutcome.PHONE_NOT_OWNER: KycErrors.CARRIER_PHONE_NOT_OWNER,
    CarrierOutcome.NUMBER_REASSIGNED: KycErrors.CARRIER_NUMBER_REASSIGNED,
    CarrierOutcome.NUMBER_SUSPENDED: KycErrors.CARRIER_NUMBER_SUSPENDED,
}

FACE_FAILURES: dict[FaceOutcome, ErrorSpec] = {
    FaceOutcome.LIVENESS_FAILED: KycErrors.FACE_LIVENESS_FAILED,
    FaceOutcome.FACE_MISMATCH: KycErrors.FACE_MISMATCH,
}
