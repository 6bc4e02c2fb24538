"""Loan contracts (借款合同): the terms, the versioned template, the document and its SHA-256, and the
platform's Ed25519 signature over that hash. Pure apart from the signing-key file; storage, the step-up
signing flow and ``miaodai contract verify`` live with the loans that use them.
"""
