"""Synthetic applicants with a known ground truth: what the default model of a fresh install learns from.

A new lender has no repayment history, so the packaged scorecard is trained on applicants drawn here,
each through the same code a real application goes through:

1. A valid resident ID number (GB 11643 check digit by python-stdnum) from one of a few county codes,
   born so that the applicant is 18-60 on :data:`REFERENCE_DATE`.
2. The declared form, with plausible correlations: a latent social-economic factor drives education;
   age and education drive occupation (students are young, the retired old); education, occupation
   and age drive the monthly income (log-normal); age tilts the purpose (weddings in the late 20s).
3. The sandbox bureau's report for that ID number (:class:`~miaodai.credit.bureau.SandboxBureau`: its
   own latent credit quality, thin files included), the sandbox carrier data's phone tenure for a
   drawn phone number (3 % unknown), and for 15 % returning customers an internal history.
4. :func:`~miaodai.credit.features.build_features` — the service's own feature builder.
5. The outcome: ``bad`` ~ Bernoulli(``true_pd``), ``true_pd = 1 / (1 + exp(-z))`` with the ground
   truth below, a function of the features only (so a perfect model could recover it exactly)::

       z = -3.80
           + 0.30 * min(bureau_inquiries_3m, 8)
           + 1.40 * bureau_utilisation                    (unknown: 0.50)
           + 0.020 * min(bureau_worst_overdue_days_24m, 90)
           - 0.010 * min(bureau_file_age_months, 120)      (no file: +0.60 instead)
           - 0.55 * ln(monthly_income_yuan / 6000)         (income floored at 500 yuan)
           + 2.00 * min(max(debt_to_income - 0.35, 0), 1)  (unknown: 0)
           - 0.012 * min(phone_tenure_months, 60)          (unknown: +0.30 instead)
           + 0.45 * [age < 23] + 0.25 * [age >= 55]
           + occupation:  civil_servant -0.50, employee 0, retired 0, self_employed +0.30,
                          freelancer +0.40, student +0.60, unemployed +0.90
           + education:   below_high_school +0.30, high_school +0.15, associate 0, bachelor -0.15,
                          postgraduate -0.30
           + loan_purpose: home_furnishing -0.20, education 0, wedding 0, daily_consumption +0.10,
                          travel +0.20, other +0.20, medical +0.30
           + 0.040 * min(internal_max_overdue_days, 30) - 0.20 * min(internal_loans_paid_off, 3)

   The other bureau features (open accounts, balances, inquiries in 1 and 6 months, months since the
   last overdue) have no effect of their own: they only correlate with those that do, as in life.

The same ``seed`` gives the same file, byte for byte.
"""

from __future__ import annotations

import csv
import math
import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from stdnum.cn import ric

from miaodai.credit.bureau import SandboxBureau, documented_report
from miaodai.credit.carrier_data import CARRIER_DATA_TIMEOUT_PHONE, SHORT_TENURE_PHONE, SandboxCarrierData
from miaodai.credit.features import (
    FEATURE_NAMES,
    ApplicationInput,
    Education,
    Features,
    InternalHistory,
    LoanPurpose,
    Occupation,
    build_features,
)
from miaodai.identity.resident_id import InvalidResidentId, age_on, parse_resident_id

REFERENCE_DATE = date(2026, 11, 1)
# County codes (Beijing, Shanghai, Guangzhou, Shenzhen, Hangzhou, Chengdu, Wuhan, Nanjing, Xi'an, Jinan,
# Xiamen). python-stdnum knows when each code came into use: one too young for a birth date is redrawn.
COUNTIES = ("110101", "110105", "310101", "310104", "440106", "440305", "330106", "510107", "420106", "320102",
            "610113", "370102", "350203")
BUREAU_IDS_TO_AVOID = ("110101199003089062", "110101199003089070")  # the sandbox's timeout and error cases

INTERCEPT = -3.80
OCCUPATION_EFFECT = {"civil_servant": -0.50, "employee": 0.0, "retired": 0.0, "self_employed": 0.30,
                     "freelancer": 0.40, "student": 0.60, "unemployed": 0.90}
EDUCATION_EFFECT = {"below_high_school": 0.30, "high_school": 0.15, "associate": 0.0, "bachelor": -0.15,
                    "postgraduate": -0.30}
PURPOSE_EFFECT = {"home_furnishing": -0.20, "education": 0.0, "wedding": 0.0, "daily_consumption": 0.10,
                  "travel": 0.20, "other": 0.20, "medical": 0.30}
EDUCATIONS = (Education.BELOW_HIGH_SCHOOL, Education.HIGH_SCHOOL, Education.ASSOCIATE, Education.BACHELOR,
              Education.POSTGRADUATE)


def true_logit(f: Features) -> float:
    """The ground truth's log-odds of bad for one feature dictionary (the module docstring's formula)."""
    z = INTERCEPT
    z += 0.30 * min(f["bureau_inquiries_3m"] or 0, 8)
    z += 1.40 * (0.50 if f["bureau_utilisation"] is None else f["bureau_utilisation"])
    z += 0.020 * min(f["bureau_worst_overdue_days_24m"] or 0, 90)
    file_age = f["bureau_file_age_months"]
    z += 0.60 if file_age is None else -0.010 * min(file_age, 120)
    z -= 0.55 * math.log(max(f["monthly_income_yuan"], 500) / 6000)
    dti = f["debt_to_income"]
    z += 0.0 if dti is None else 2.00 * min(max(dti - 0.35, 0.0), 1.0)
    tenure = f["phone_tenure_months"]
    z += 0.30 if tenure is None else -0.012 * min(tenure, 60)
    z += 0.45 * (f["age"] < 23) + 0.25 * (f["age"] >= 55)
    z += OCCUPATION_EFFECT[f["occupation"]] + EDUCATION_EFFECT[f["education"]] + PURPOSE_EFFECT[f["loan_purpose"]]
    z += 0.040 * min(f["internal_max_overdue_days"], 30) - 0.20 * min(f["internal_loans_paid_off"], 3)
    return z


class ApplicantGenerator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        no_wait = {"timeout_seconds": 1.0, "latency_seconds": 0.0, "sleep": lambda _seconds: None}
        self.bureau = SandboxBureau(**no_wait)
        self.carrier = SandboxCarrierData(**no_wait)

    def id_number(self) -> tuple[str, int]:
        rng = self.rng
        while True:
            age = min(60, 18 + int(rng.betavariate(1.8, 3.2) * 43))
            latest = REFERENCE_DATE.replace(year=REFERENCE_DATE.year - age)
            birth = latest - timedelta(days=rng.randrange(365))
            body = f"{rng.choice(COUNTIES)}{birth:%Y%m%d}{rng.randrange(1, 1000):03d}"
            number = body + ric.calc_check_digit(body + "0")  # it reads the first 17 digits
            if number in BUREAU_IDS_TO_AVOID or documented_report(number, "x") is not None:
                continue
            try:
                parsed = parse_resident_id(number, today=REFERENCE_DATE)
            except InvalidResidentId:
                continue
            return number, age_on(parsed.birth_date, REFERENCE_DATE)

    def application(self, age: int) -> ApplicationInput:
        rng = self.rng
        socio = rng.gauss(0.0, 1.0)
        rank = sum(socio + rng.gauss(0, 0.6) > cut for cut in (-1.1, -0.2, 0.5, 1.7))
        education = EDUCATIONS[rank]
        roll = rng.random()
        if age <= 24 and roll < 0.15:
            occupation = Occupation.STUDENT
        elif age >= 55 and roll < 0.40:
            occupation = Occupation.RETIRED
        elif rng.random() < 0.05 + 0.04 * (socio < -1):
            occupation = Occupation.UNEMPLOYED
        else:
            occupation = rng.choices(
                (Occupation.EMPLOYEE, Occupation.CIVIL_SERVANT, Occupation.SELF_EMPLOYED, Occupation.FREELANCER),
                weights=(0.58, 0.06 + 0.05 * (rank >= 3), 0.17, 0.13))[0]
        base = {Occupation.STUDENT: 1500, Occupation.UNEMPLOYED: 2000, Occupation.RETIRED: 4000,
                Occupation.CIVIL_SERVANT: 8000, Occupation.SELF_EMPLOYED: 7500}.get(occupation, 6500)
        log_income = math.log(base) + 0.22 * (rank - 2) + 0.012 * (min(age, 45) - 30) + rng.gauss(0, 0.45)
        income_yuan = max(800, int(round(math.exp(log_income), -2)))
        purposes = tuple(LoanPurpose)
        weights = {LoanPurpose.DAILY_CONSUMPTION: 0.35, LoanPurpose.HOME_FURNISHING: 0.18,
                   LoanPurpose.EDUCATION: 0.08 + 0.08 * (age < 30), LoanPurpose.TRAVEL: 0.10,
                   LoanPurpose.MEDICAL: 0.05 + 0.05 * (age >= 45), LoanPurpose.WEDDING: 0.02 + 0.10 * (24 <= age <= 33),
                   LoanPurpose.OTHER: 0.10}
        purpose = rng.choices(purposes, weights=[weights[p] for p in purposes])[0]
        return ApplicationInput(monthly_income_fen=income_yuan * 100, occupation=occupation, education=education,
                                loan_purpose=purpose)

    def phone_tenure(self) -> int | None:
        phone = f"+861{self.rng.choice('3456789')}{self.rng.randrange(10**9):09d}"
        if self.rng.random() < 0.03 or phone in (SHORT_TENURE_PHONE, CARRIER_DATA_TIMEOUT_PHONE):
            return None  # no carrier data for this applicant
        return self.carrier.phone_tenure_months(phone)

    def internal(self) -> InternalHistory:
        rng = self.rng
        if rng.random() >= 0.15:
            return InternalHistory()
        overdue = 0 if rng.random() < 0.8 else rng.choice((1, 3, 7, 15, 30, 45))
        return InternalHistory(loans_paid_off=rng.randint(1, 4), max_overdue_days=overdue)

    def applicant(self) -> dict[str, Any]:
        number, age = self.id_number()
        application = self.application(age)
        report = self.bureau.report(number, "synthetic")
        features = build_features(application=application, age=age, report=report,
                                  phone_tenure_months=self.phone_tenure(), internal=self.internal())
        true_pd = 1.0 / (1.0 + math.exp(-true_logit(features)))
        return {**features, "bad": int(self.rng.random() < true_pd), "true_pd": round(true_pd, 6)}


def applicants(rows: int, seed: int) -> list[dict[str, Any]]:
    generator = ApplicantGenerator(seed)
    return [generator.applicant() for _ in range(rows)]


def write_csv(path: str | Path, *, rows: int, seed: int) -> dict[str, Any]:
    """Write ``rows`` applicants (the features, ``bad``, ``true_pd``); returns a summary."""
    drawn = applicants(rows, seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*FEATURE_NAMES, "bad", "true_pd"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(drawn)
    return {"path": str(path), "rows": rows, "seed": seed,
            "bad_rate": round(sum(r["bad"] for r in drawn) / rows, 4),
            "mean_true_pd": round(sum(r["true_pd"] for r in drawn) / rows, 4)}
