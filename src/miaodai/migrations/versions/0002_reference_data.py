"""Reference data: the audit chain head and version 1.0 of the four consent documents.

Consent texts are content releases: a new version is a new migration that inserts a
new row (old versions stay, because grants point at them).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

EFFECTIVE = datetime(2026, 1, 1, tzinfo=UTC)

DOCUMENTS = [
    (
        "privacy_policy", "1.0", "隐私政策", "Privacy policy",
        "秒贷隐私政策 1.0：我们收集手机号、身份信息和设备信息，仅用于身份核验、授信与贷后服务；"
        "个人信息加密存储，您可查询、复制、更正、删除并撤回同意。\n"
        "Miaodai privacy policy 1.0: we collect your phone number, identity and device data only to "
        "verify you, decide credit and service your loan; personal data is encrypted at rest, and you may "
        "see, copy, correct and delete it and withdraw consent.",
    ),
    (
        "user_agreement", "1.0", "用户服务协议", "User agreement",
        "秒贷用户服务协议 1.0：账户使用规则、双方权利义务与争议解决。\n"
        "Miaodai user agreement 1.0: account rules, the rights and duties of both sides, and dispute resolution.",
    ),
    (
        "credit_bureau_query", "1.0", "征信查询授权书", "Credit-bureau query authorization",
        "本人授权秒贷在授信审批及贷后管理中查询、使用本人征信报告。\n"
        "I authorise Miaodai to query and use my credit-bureau report for credit decisions and loan servicing.",
    ),
    (
        "carrier_data", "1.0", "运营商信息授权书", "Carrier-data authorization",
        "本人授权秒贷向运营商核验本人手机号实名信息及在网状态。\n"
        "I authorise Miaodai to verify with my mobile carrier that my number is registered to me and in service.",
    ),
]


def upgrade() -> None:
    head = sa.table(
        "audit_chain_head", sa.column("id", sa.Integer), sa.column("last_seq", sa.BigInteger),
        sa.column("last_hash", sa.String),
    )
    op.bulk_insert(head, [{"id": 1, "last_seq": 0, "last_hash": "0" * 64}])
    documents = sa.table(
        "consent_documents", sa.column("kind", sa.String), sa.column("version", sa.String),
        sa.column("title_zh", sa.String), sa.column("title_en", sa.String), sa.column("body", sa.Text),
        sa.column("body_sha256", sa.String), sa.column("effective_at", sa.DateTime(timezone=True)),
    )
    effective = EFFECTIVE if op.get_bind().dialect.name != "sqlite" else EFFECTIVE.replace(tzinfo=None)
    op.bulk_insert(
        documents,
        [
            {
                "kind": kind, "version": version, "title_zh": zh, "title_en": en, "body": body,
                "body_sha256": hashlib.sha256(body.encode()).hexdigest(), "effective_at": effective,
            }
            for kind, version, zh, en, body in DOCUMENTS
        ],
    )


def downgrade() -> None:
    op.execute("DELETE FROM consent_documents WHERE version = '1.0'")
    op.execute("DELETE FROM audit_chain_head WHERE id = 1")
