"""Simulated cyber-insurance market: the canonical truth fictitious insurers would report.

The simulator draws insured companies, their annual policy terms (renewals, new business,
co-insured risks written by two insurers), incidents (attritional Poisson events plus a few
named systemic events hitting many insureds across insurers at once), the claims they give
rise to and each claim's monthly development (payments, case reserves, closure, reopening).

Everything is vectorized over rows with numpy; loops run only over small sets (insurers,
sectors, products, events). All randomness comes from one PCG64 generator seeded by
`MarketParams.seed`, consumed in a fixed order, so equal params give identical frames.
Codes are checked against the taxonomy seeds when the reference data is loaded, so a seed
change that drops a code the simulator uses fails loudly instead of producing bad truth.

The insurers of the market come from their sample profiles (`cyberclaims.sample.profiles`: market
share, home provinces, currencies, number patterns, language of free text); by default those that
also have a valid mapping config.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from functools import cache
from typing import NamedTuple

import numpy as np
import polars as pl
import pyarrow as pa

from cyberclaims.sample.profiles import SampleProfile, sample_market
from ingestion.contract import FIELDS, MONEY_PRECISION, MONEY_SCALE, REVENUE_PRECISION
from ingestion.pseudonymize import USCC_CHARSET, uscc_check_values
from ingestion.taxonomy import read_seed


@dataclass(frozen=True)
class MarketParams:
    seed: int = 20240101
    n_insureds: int = 3000
    first_month: str = "2022-01"  # first accident/underwriting month
    last_month: str = "2025-12"  # last valuation month (data cut-off)
    frequency_scale: float = 1.0  # multiplies claim frequency (benchmarks use it to reach target row counts)


# --------------------------------------------------------------------------- unified social credit code

_ORG_SPACE = 31**9  # nine base-31 characters after '91' and the region code
_MAX_USCC_BATCH = 2**25  # keeps the affine serial map below 2**63


def make_uscc(region_codes: np.ndarray, rng: np.random.Generator) -> pl.Series:
    """Valid, pairwise distinct codes '91' + 6-digit region + 9 characters + check, one per region code.

    Distinctness does not rely on luck: the nine-character organisation part is an affine
    bijection of a shuffled row number modulo 31**9.
    """
    n = len(region_codes)
    if n > _MAX_USCC_BATCH:
        raise ValueError(f"at most {_MAX_USCC_BATCH} codes per call, got {n}")
    multiplier = int(rng.integers(2**36, 2**38))
    multiplier += multiplier % 31 == 0  # coprime with 31**9, so the map is a bijection
    serial = (rng.permutation(n).astype(np.int64) * multiplier + int(rng.integers(0, _ORG_SPACE))) % _ORG_SPACE
    values = np.empty((n, 18), dtype=np.int64)
    values[:, 0], values[:, 1] = 9, 1  # registered by the market regulator; enterprise
    region = np.asarray(region_codes, dtype=np.int64)
    for i in range(6):
        values[:, 2 + i] = region // 10 ** (5 - i) % 10
    for i in range(9):
        values[:, 8 + i] = serial // 31 ** (8 - i) % 31
    values[:, 17] = uscc_check_values(values[:, :17])
    chars = np.frombuffer(USCC_CHARSET.encode(), dtype=np.uint8)[values]
    return pl.Series(np.ascontiguousarray(chars).view("S18").ravel()).cast(pl.String)


# --------------------------------------------------------------------------- market assumptions

# sector: (share of insureds, median annual revenue in yuan, relative incident frequency)
_SECTOR_PROFILE = {
    "telecom_internet": (0.10, 8e7, 1.3),
    "energy": (0.05, 5e8, 1.0),
    "finance": (0.12, 3e8, 1.5),
    "healthcare": (0.07, 1e8, 1.4),
    "manufacturing": (0.18, 1.5e8, 0.9),
    "transport": (0.05, 1.2e8, 0.9),
    "water": (0.004, 6e7, 0.8),  # deliberately thin, so disclosure control has cells to suppress
    "education": (0.05, 3e7, 1.2),
    "industrial_internet": (0.04, 6e7, 1.1),
    "connected_vehicles": (0.03, 2e8, 1.0),
    "iot": (0.04, 4e7, 1.1),
    "public_admin": (0.04, 5e7, 1.1),
    "retail_services": (0.14, 5e7, 1.0),
    "other": (0.086, 4e7, 0.8),
}
_PILOT_ABBREVIATION = {
    "telecom_internet": "TEL", "energy": "ENE", "finance": "FIN", "healthcare": "MED",
    "industrial_internet": "IIN", "connected_vehicles": "CAV", "iot": "IOT",
}
_PILOT_SHARE = 0.30

# province: (weight ~ size of the cyber market, ((city code, city name), ...)); 71/81/82 are not mainland.
_PROVINCES = {
    "11": (8.0, (("01", "北京"),)), "12": (2.0, (("01", "天津"),)),
    "13": (2.0, (("01", "石家庄"), ("02", "唐山"))), "14": (1.0, (("01", "太原"),)),
    "15": (1.0, (("01", "呼和浩特"),)), "21": (1.5, (("01", "沈阳"), ("02", "大连"))),
    "22": (0.8, (("01", "长春"),)), "23": (0.8, (("01", "哈尔滨"),)),
    "31": (8.0, (("01", "上海"),)), "32": (9.0, (("01", "南京"), ("02", "无锡"), ("05", "苏州"))),
    "33": (7.0, (("01", "杭州"), ("02", "宁波"))), "34": (2.5, (("01", "合肥"),)),
    "35": (3.0, (("01", "福州"), ("02", "厦门"))), "36": (1.5, (("01", "南昌"),)),
    "37": (5.0, (("01", "济南"), ("02", "青岛"))), "41": (3.0, (("01", "郑州"),)),
    "42": (3.0, (("01", "武汉"),)), "43": (2.5, (("01", "长沙"),)),
    "44": (12.0, (("01", "广州"), ("03", "深圳"), ("06", "佛山"), ("19", "东莞"))),
    "45": (1.2, (("01", "南宁"),)), "46": (0.5, (("01", "海口"),)),
    "50": (2.5, (("01", "重庆"),)), "51": (4.0, (("01", "成都"),)),
    "52": (1.0, (("01", "贵阳"),)), "53": (1.0, (("01", "昆明"),)),
    "54": (0.1, (("01", "拉萨"),)), "61": (2.0, (("01", "西安"),)),
    "62": (0.5, (("01", "兰州"),)), "63": (0.2, (("01", "西宁"),)),
    "64": (0.3, (("01", "银川"),)), "65": (0.6, (("01", "乌鲁木齐"),)),
}
_NON_MAINLAND = {"71", "81", "82"}

_NAME_FIRST = "云华恒正天博瑞星中汇金安宏新德鼎海卓思明聚青远嘉启信达通和泰"
_NAME_SECOND = "启信通源成睿达河科智盾远元润盛纳越道力峰联创安宇航腾辉"
_NAME_WORDS = {
    "telecom_internet": ("网络科技", "信息技术", "通信技术"),
    "energy": ("能源", "电力科技", "新能源"),
    "finance": ("金融服务", "融资租赁", "投资管理"),
    "healthcare": ("医疗科技", "医药", "健康管理"),
    "manufacturing": ("机械制造", "精密制造", "电子"),
    "transport": ("物流", "运输", "供应链管理"),
    "water": ("水务", "供水", "水利工程"),
    "education": ("教育科技", "培训", "教育咨询"),
    "industrial_internet": ("工业互联网科技", "智能制造", "工业软件"),
    "connected_vehicles": ("智能网联汽车科技", "车联网科技", "汽车电子"),
    "iot": ("物联网科技", "智能设备", "传感技术"),
    "public_admin": ("城市服务", "公共事业发展", "政务信息服务"),
    "retail_services": ("商贸", "零售连锁", "电子商务"),
    "other": ("实业", "建设工程", "文化传媒"),
}
_NAME_SUFFIX = (("有限公司", 0.7), ("股份有限公司", 0.2), ("集团有限公司", 0.1))

# product: (share, sections always included, optional sections); at most 6 sections in total.
_PRODUCTS = {
    "property_loss": (0.15, ("incident_response", "data_restoration"),
                      ("business_interruption", "extortion", "notification", "crisis_communication")),
    "liability": (0.25, ("privacy_liability", "network_security_liability"),
                  ("regulatory_fines", "pci_assessments", "media_liability", "incident_response", "notification")),
    "comprehensive": (0.40, ("incident_response", "privacy_liability"),
                      ("data_restoration", "business_interruption", "extortion", "notification",
                       "crisis_communication", "network_security_liability", "regulatory_fines",
                       "pci_assessments", "media_liability")),
    "it_product_liability": (0.08, ("product_professional_liability", "network_security_liability"),
                             ("incident_response", "media_liability", "privacy_liability")),
    "security_product": (0.05, ("product_professional_liability", "data_restoration"),
                         ("incident_response", "network_security_liability", "business_interruption")),
    "security_services_pl": (0.07, ("product_professional_liability", "network_security_liability"),
                             ("privacy_liability", "incident_response", "regulatory_fines")),
}
_TECH_PRODUCT_TILT = 4.0  # telecom/internet firms buy IT-product and security covers far more often
_MAX_SECTIONS = 6

_LIMIT_LADDER = np.array([5e5, 1e6, 2e6, 5e6, 1e7, 2e7, 5e7])
_DEDUCTIBLE_SHARE = np.array([0.001, 0.002, 0.005, 0.01])
_RENEWAL_RATE = 0.85
_NEW_BUSINESS = 0.25  # new insureds per year relative to the book, so it grows ~10%/yr net of lapses
_BOOK_GROWTH = 1.10
_CO_INSURED_SHARE = 0.05
_CO_INSURER_PREMIUM_SHARE = 0.6
_PREMIUM_AT_1M = 18_000.0
_RATE_TREND = 1.04
_REVENUE_GROWTH = 1.05
_BASE_FREQUENCY = 0.055

_INCIDENT_MIX = {
    "ransomware": 0.22, "data_breach": 0.18, "funds_transfer_fraud": 0.12, "ddos": 0.07,
    "other_malware": 0.08, "system_failure": 0.08, "insider_misuse": 0.05, "third_party_outage": 0.06,
    "iot_ot_attack": 0.03, "other": 0.05, "unknown": 0.06,
}
_SECTOR_INCIDENT_TILT = {
    "finance": {"funds_transfer_fraud": 2.0, "data_breach": 1.5, "ddos": 1.5},
    "healthcare": {"data_breach": 2.0, "ransomware": 1.3},
    "telecom_internet": {"ddos": 2.5, "data_breach": 1.3},
    "retail_services": {"data_breach": 1.5, "funds_transfer_fraud": 1.3},
    "manufacturing": {"ransomware": 1.4, "iot_ot_attack": 3.0},
    "energy": {"iot_ot_attack": 5.0, "ransomware": 1.3},
    "water": {"iot_ot_attack": 5.0},
    "industrial_internet": {"iot_ot_attack": 6.0},
    "connected_vehicles": {"iot_ot_attack": 6.0, "data_breach": 1.3},
    "iot": {"iot_ot_attack": 6.0, "ddos": 1.5},
    "transport": {"system_failure": 1.5, "ransomware": 1.2},
    "education": {"data_breach": 1.5, "ransomware": 1.3},
    "public_admin": {"data_breach": 1.5, "ddos": 1.5},
}


class _Profile(NamedTuple):
    vectors: dict[str, float]  # attack-vector weights
    discovery_days: float  # median days from occurrence to discovery
    discovery_sigma: float  # lognormal sigma of that lag
    breach_share: float  # share of incidents with stolen records
    downtime_hours: float  # median downtime, 0 if the type causes none
    severity: float  # claim severity factor
    claim_share: float  # share of incidents giving rise to a claim


_INCIDENT_PROFILE = {
    "ransomware": _Profile({"phishing": 35, "vulnerability_exploit": 25, "remote_access": 20, "stolen_credentials": 10,
                    "supply_chain": 5, "unknown": 5}, 3.0, 1.2, 0.4, 48.0, 2.0, 0.85),
    "data_breach": _Profile({"vulnerability_exploit": 25, "stolen_credentials": 20, "misconfiguration": 20, "phishing": 15,
                     "insider": 5, "physical": 5, "unknown": 10}, 20.0, 1.5, 1.0, 0.0, 1.3, 0.85),
    "funds_transfer_fraud": _Profile({"phishing": 70, "stolen_credentials": 20, "unknown": 10}, 5.0, 1.2, 0.0, 0.0, 1.0, 0.85),
    "ddos": _Profile({"unknown": 60, "vulnerability_exploit": 10, "misconfiguration": 10, "supply_chain": 10,
              "remote_access": 10}, 0.3, 1.0, 0.0, 6.0, 0.5, 0.7),
    "other_malware": _Profile({"phishing": 50, "vulnerability_exploit": 20, "supply_chain": 10, "unknown": 20},
                      5.0, 1.2, 0.2, 4.0, 0.7, 0.8),
    "system_failure": _Profile({"misconfiguration": 50, "unknown": 50}, 0.3, 1.0, 0.0, 8.0, 0.7, 0.6),
    "insider_misuse": _Profile({"insider": 90, "physical": 10}, 30.0, 1.5, 0.8, 0.0, 0.9, 0.85),
    "third_party_outage": _Profile({"supply_chain": 80, "unknown": 20}, 0.2, 1.0, 0.0, 10.0, 0.8, 0.55),
    "iot_ot_attack": _Profile({"remote_access": 35, "vulnerability_exploit": 35, "misconfiguration": 10, "physical": 10,
                       "unknown": 10}, 5.0, 1.2, 0.05, 36.0, 1.6, 0.85),
    "other": _Profile({"unknown": 50, "phishing": 15, "misconfiguration": 15, "physical": 20}, 5.0, 1.2, 0.1, 0.0, 0.6, 0.8),
    "unknown": _Profile({"unknown": 100}, 5.0, 1.2, 0.1, 0.0, 0.8, 0.8),
}
# data types stolen in a breach: default probabilities, overridden per sector
_DATA_TYPE_PROBABILITY = {"PII": 0.85, "PHI": 0.03, "PCI": 0.05, "IP": 0.05}
_SECTOR_DATA_TYPES = {
    "healthcare": {"PHI": 0.8}, "finance": {"PCI": 0.4}, "retail_services": {"PCI": 0.4},
    "manufacturing": {"IP": 0.3}, "industrial_internet": {"IP": 0.3}, "telecom_internet": {"IP": 0.15},
}
_NO_DATA = "none"
_DOWNTIME_UNKNOWN = 0.08

# Well-known exploited CVEs and the year they were published (an incident never uses a future CVE).
_CVES = (
    ("CVE-2021-26855", 2021), ("CVE-2021-34527", 2021), ("CVE-2021-44228", 2021), ("CVE-2022-1388", 2022),
    ("CVE-2022-26134", 2022), ("CVE-2022-41040", 2022), ("CVE-2023-20198", 2023), ("CVE-2023-22518", 2023),
    ("CVE-2023-34362", 2023), ("CVE-2023-46604", 2023), ("CVE-2023-4966", 2023), ("CVE-2024-1709", 2024),
    ("CVE-2024-21762", 2024), ("CVE-2024-3400", 2024),
)
_CVE_NAMED = 0.7  # exploits attributed to a specific CVE
_CVE_CHAINED = 0.15  # of those, a second CVE chained in


@dataclass(frozen=True)
class _Event:
    ref: str
    name: str
    incident_type: str
    attack_vector: str
    start: str
    hit_rate: float  # share of in-force insureds hit
    spread_days: int
    is_cve: bool


_EVENTS = (
    _Event("CVE-2023-34362", "MOVEit Transfer mass data-theft campaign", "data_breach",
           "vulnerability_exploit", "2023-05-31", 0.015, 10, True),
    _Event("CVE-2023-4966", "CVE-2023-4966 Citrix Bleed campaign", "ransomware",
           "vulnerability_exploit", "2023-11-02", 0.02, 7, True),
    _Event("VENDOR-OUTAGE-2024-07", "Cloud/SaaS vendor outage after a faulty update", "third_party_outage",
           "supply_chain", "2024-07-19", 0.04, 2, False),
    _Event("RANSOM-WAVE-2025-03", "Ransomware wave through VPN appliances", "ransomware",
           "remote_access", "2025-03-10", 0.01, 14, False),
)

# Which coverage section an incident type mostly claims under; every covered section stays possible.
_SECTION_BASE_AFFINITY = {"product_professional_liability": 1.5, "network_security_liability": 1.0}
_SECTION_AFFINITY = {
    "ransomware": {"extortion": 4, "data_restoration": 3, "business_interruption": 3, "incident_response": 3},
    "data_breach": {"privacy_liability": 4, "notification": 3, "incident_response": 3, "regulatory_fines": 2,
                    "pci_assessments": 1.5, "crisis_communication": 1},
    "funds_transfer_fraud": {"incident_response": 2, "network_security_liability": 2},
    "ddos": {"business_interruption": 4, "incident_response": 2},
    "other_malware": {"data_restoration": 3, "incident_response": 3},
    "system_failure": {"business_interruption": 4, "data_restoration": 2},
    "insider_misuse": {"privacy_liability": 3, "incident_response": 2, "regulatory_fines": 1.5},
    "third_party_outage": {"business_interruption": 5},
    "iot_ot_attack": {"business_interruption": 3, "incident_response": 2, "product_professional_liability": 2},
    "other": {"incident_response": 1, "media_liability": 2},
    "unknown": {"incident_response": 2},
}
_SECTION_SEVERITY = {
    "incident_response": 0.6, "data_restoration": 0.8, "business_interruption": 1.5, "extortion": 1.3,
    "notification": 0.7, "crisis_communication": 0.3, "privacy_liability": 1.5, "network_security_liability": 1.2,
    "regulatory_fines": 1.5, "pci_assessments": 1.0, "media_liability": 0.8, "product_professional_liability": 1.2,
}

# Claim arrays carry statuses as indexes into _STATUS.
_STATUS = ("open", "closed_paid", "closed_no_payment", "reopened", "denied", "withdrawn")
_OPEN, _CLOSED_PAID, _CLOSED_NO_PAYMENT, _REOPENED, _DENIED_STATUS, _WITHDRAWN_STATUS = range(6)
_SECOND_CLAIM = 0.3
_SEVERITY_MEDIAN, _SEVERITY_SIGMA = 80_000.0, 1.4
_TAIL_SHARE, _TAIL_THRESHOLD, _TAIL_ALPHA = 0.05, 1e6, 1.3
# closing outcome shares among claims with a positive net loss
_DENIED, _WITHDRAWN, _NO_PAYMENT = 0.04, 0.03, 0.08
_REOPEN = 0.03
_MAX_SETTLEMENT_MONTHS = 48
_PAYMENT_SHAPE = 1.6  # indemnity is paid late in a claim's life, in quarter instalments
_RECOVERY = 0.05

_DESCRIPTIONS = {  # incident type: (Chinese, English)
    "ransomware": ("勒索软件加密了文件服务器，业务系统停机", "Ransomware encrypted file servers and halted operations"),
    "data_breach": ("客户数据库遭未授权访问，数据疑似外泄", "Unauthorised access to the customer database; exfiltration suspected"),
    "funds_transfer_fraud": ("财务人员收到仿冒邮件后向虚假账户转账", "Finance staff wired funds to a fraudulent account after a spoofed email"),
    "ddos": ("官网及APP遭受大流量DDoS攻击，服务中断", "Website and app knocked offline by a volumetric DDoS attack"),
    "other_malware": ("办公终端感染木马病毒，需清除重装", "Office endpoints infected with malware; rebuild required"),
    "system_failure": ("核心系统升级失败导致服务中断", "A failed core-system upgrade caused a service outage"),
    "insider_misuse": ("离职员工违规导出客户信息", "A departing employee exported customer records without authorisation"),
    "third_party_outage": ("云服务商故障导致业务中断", "A cloud service provider outage interrupted business"),
    "iot_ot_attack": ("工控系统遭远程入侵，生产线停工", "Remote intrusion into the OT network stopped the production line"),
    "other": ("网络安全事件，详情待查", "Cyber event, details under investigation"),
    "unknown": ("原因不明的系统异常", "System anomaly of unknown cause"),
}
_CONTACT_SHARE = 0.25  # descriptions that leak a contact person's name and mobile number
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
_GIVEN_NAMES = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超",
                "秀英", "华", "平", "刚", "桂英", "建国", "志强")

_PROBE_INSUREDS = 20_000
# params_for_target_rows grows the book up to this size, then raises frequency instead, which keeps
# the policy-level frames (the memory-hungry part) bounded for benchmark-sized targets.
_MAX_TARGET_INSUREDS = 1_500_000
_CHUNK_ROWS = 2_000_000  # valuation rows developed at once; bounds the temporaries of _develop


# --------------------------------------------------------------------------- reference data


@dataclass(frozen=True)
class _Reference:
    sectors: tuple[str, ...]
    is_pilot: np.ndarray
    sector_divisions: tuple[np.ndarray, ...]  # per sector: GB/T 4754 divisions that map to it
    products: tuple[str, ...]
    sections: tuple[str, ...]
    incident_types: tuple[str, ...]
    attack_vectors: tuple[str, ...]
    data_types: tuple[str, ...]
    currencies: tuple[str, ...]  # tax_currency seed order
    fx_first_month: int
    fx: np.ndarray  # [currency in seed order, month - fx_first_month] → yuan per unit


def _seed_codes(name: str, column: str) -> tuple[str, ...]:
    return tuple(row[column] for row in read_seed(name))


def _require(what: str, used: set[str], known: set[str]) -> None:
    if used != known:
        raise ValueError(f"simulator {what} out of step with the taxonomy seeds: "
                         f"unknown {sorted(used - known)}, not simulated {sorted(known - used)}")


@cache
def _reference() -> _Reference:
    sector_rows = read_seed("tax_sector")
    sectors = tuple(r["sector_code"] for r in sector_rows)
    _require("sectors", set(_SECTOR_PROFILE), set(sectors))
    _require("name words", set(_NAME_WORDS), set(sectors))
    pilot = {r["sector_code"] for r in sector_rows if r["is_pilot_sector"] == "true"}
    _require("pilot sectors", set(_PILOT_ABBREVIATION), pilot)
    provinces = set(_seed_codes("tax_region", "province_code"))
    _require("provinces", set(_PROVINCES), provinces - _NON_MAINLAND)

    divisions: dict[str, list[int]] = {s: [] for s in sectors}
    for r in read_seed("tax_gbt4754_division"):
        divisions[r["sector_code"]] += range(int(r["division_from"]), int(r["division_to"]) + 1)

    products = _seed_codes("tax_product_type", "product_type")
    sections = _seed_codes("tax_coverage_section", "coverage_section")
    incident_types = _seed_codes("tax_incident_type", "incident_type")
    attack_vectors = _seed_codes("tax_attack_vector", "attack_vector")
    data_types = _seed_codes("tax_data_type", "data_type")
    statuses = _seed_codes("tax_claim_status", "status")
    _require("products", set(_PRODUCTS), set(products))
    _require("coverage sections", {s for _, core, opt in _PRODUCTS.values() for s in core + opt}, set(sections))
    _require("section severities", set(_SECTION_SEVERITY), set(sections))
    _require("incident types", set(_INCIDENT_MIX), set(incident_types))
    _require("incident profiles", set(_INCIDENT_PROFILE), set(incident_types))
    _require("descriptions", set(_DESCRIPTIONS), set(incident_types))
    _require("attack vectors", {v for p in _INCIDENT_PROFILE.values() for v in p.vectors}, set(attack_vectors))
    _require("data types", {*_DATA_TYPE_PROBABILITY, _NO_DATA}, set(data_types))
    _require("claim statuses", set(_STATUS), set(statuses))
    currencies = _seed_codes("tax_currency", "currency")
    for event in _EVENTS:
        if event.incident_type not in incident_types or event.attack_vector not in attack_vectors:
            raise ValueError(f"systemic event {event.ref} uses unknown codes")

    fx_rows = [r for r in read_seed("fx_rates_monthly") if r["currency"] in currencies]
    months = sorted({_month_index(r["rate_month"][:7]) for r in fx_rows})
    if months != list(range(months[0], months[-1] + 1)):
        raise ValueError("fx_rates_monthly.csv has gaps")
    fx = np.full((len(currencies), len(months)), np.nan)
    for r in fx_rows:
        fx[currencies.index(r["currency"]), _month_index(r["rate_month"][:7]) - months[0]] = float(r["cny_per_unit"])
    if np.isnan(fx).any():
        raise ValueError("fx_rates_monthly.csv lacks a rate for some month and currency")

    return _Reference(
        sectors=sectors,
        is_pilot=np.array([s in pilot for s in sectors]),
        sector_divisions=tuple(np.array(divisions[s], dtype=np.int64) for s in sectors),
        products=products, sections=sections, incident_types=incident_types, attack_vectors=attack_vectors,
        data_types=data_types, currencies=currencies, fx_first_month=months[0], fx=fx,
    )


# --------------------------------------------------------------------------- the insurers


@dataclass(frozen=True)
class _Market:
    """The insurers of the simulated market, from their sample profiles; arrays are indexed by insurer."""

    ids: tuple[str, ...]
    share: np.ndarray
    city_weight: np.ndarray  # [insurer, city]
    # per insurer: (currency indexes into ref.currencies, cumulative shares)
    currencies: tuple[tuple[np.ndarray, np.ndarray], ...]
    numbers: tuple[dict[str, str], ...]  # per insurer: kind (policy / incident / claim) → number pattern
    english: np.ndarray  # free text in English (else Chinese)

    @classmethod
    def of(cls, profiles: Sequence[SampleProfile], ref: _Reference) -> _Market:
        if not profiles:
            raise ValueError("no insurer has both a valid mapping config and a sample profile")
        ids = tuple(p.insurer_id for p in profiles)
        if len(set(ids)) != len(ids):
            raise ValueError(f"insurers given twice: {ids}")
        for p in profiles:
            unknown = sorted(set(p.home_provinces) - set(_PROVINCES))
            if unknown:
                raise ValueError(f"{p.insurer_id}: home provinces {unknown} have no simulated cities")
        currencies = []
        for p in profiles:
            codes = np.array([ref.currencies.index(c) for c in p.currencies], dtype=np.int64)
            cdf = np.cumsum(list(p.currencies.values()))
            currencies.append((codes, cdf / cdf[-1]))
        return cls(
            ids=ids,
            share=np.array([p.market_share for p in profiles], dtype=np.float64),
            city_weight=np.array([[_PROVINCES[prov][0] / len(_PROVINCES[prov][1]) * p.home_provinces.get(prov, 1.0)
                                   for prov, _, _ in _CITIES] for p in profiles]),
            currencies=tuple(currencies),
            numbers=tuple(p.numbers.model_dump() for p in profiles),
            english=np.array([p.language == "en" for p in profiles]),
        )

    def currency_of(self, insurer: np.ndarray, draw: np.ndarray) -> np.ndarray:
        """The currency (index into ref.currencies) of each policy: its insurer's currency shares at the draw."""
        out = np.empty(len(insurer), dtype=np.int64)
        for k, (codes, cdf) in enumerate(self.currencies):
            members = insurer == k
            out[members] = codes[np.minimum(np.searchsorted(cdf, draw[members], side="right"), len(codes) - 1)]
        return out



# --------------------------------------------------------------------------- calendar helpers
# Months are counted from 1970-01 and days from 1970-01-01, both as int64.


def _month_index(year_month: str) -> int:
    return int(np.datetime64(year_month, "M").astype(np.int64))


def _month_start(month: np.ndarray) -> np.ndarray:
    return np.asarray(month, dtype=np.int64).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


def _month_end(month: np.ndarray) -> np.ndarray:
    return _month_start(np.asarray(month) + 1) - 1


def _month_of(day: np.ndarray) -> np.ndarray:
    return np.asarray(day, dtype=np.int64).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def _year_of(day: np.ndarray) -> np.ndarray:
    return np.asarray(day, dtype=np.int64).astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


@dataclass(frozen=True)
class _Window:
    first_month: int
    last_month: int
    cutoff: int  # last day of last_month

    @classmethod
    def of(cls, params: MarketParams, ref: _Reference) -> _Window:
        first, last = _month_index(params.first_month), _month_index(params.last_month)
        if last < first:
            raise ValueError(f"last_month {params.last_month} precedes first_month {params.first_month}")
        fx_last = ref.fx_first_month + ref.fx.shape[1] - 1
        if first < ref.fx_first_month or last > fx_last:
            raise ValueError("the simulation window must lie within the months of fx_rates_monthly.csv")
        return cls(first, last, int(_month_end(np.array(last))))


# --------------------------------------------------------------------------- sampling helpers


def _choice(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    """n category indices drawn with the given (unnormalized) weights."""
    cdf = np.cumsum(weights, dtype=np.float64)
    return np.searchsorted(cdf / cdf[-1], rng.random(n), side="right")


def _categorical(rng: np.random.Generator, table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One category per element, drawn with the weights of row `table[rows[i]]`.

    Loops over the (few) rows of the table rather than materializing an n × categories matrix.
    """
    cdf = np.cumsum(table, axis=1, dtype=np.float64)
    cdf /= cdf[:, -1:]
    u = rng.random(len(rows))
    out = np.empty(len(rows), dtype=np.int64)
    for r in range(len(table)):
        members = rows == r
        out[members] = np.searchsorted(cdf[r], u[members], side="right")
    return out


def _profile_array(ref: _Reference, attribute: str) -> np.ndarray:
    """One incident-profile attribute per incident type, in seed order."""
    return np.array([getattr(_INCIDENT_PROFILE[t], attribute) for t in ref.incident_types], dtype=np.float64)


def _weights(table: dict[str, float], codes: tuple[str, ...], default: float = 0.0) -> np.ndarray:
    return np.array([table.get(c, default) for c in codes], dtype=np.float64)


def _lognormal_days(rng: np.random.Generator, median: np.ndarray, sigma: np.ndarray, cap: int) -> np.ndarray:
    return np.minimum(np.floor(median * np.exp(sigma * rng.standard_normal(len(median)))), cap).astype(np.int64)


def _group_offsets(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows repeated `counts` times: (owner index per row, position of the row within its owner)."""
    owner = np.repeat(np.arange(len(counts)), counts)
    position = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, position


def _sequence_within(group: np.ndarray, *order_keys: np.ndarray) -> np.ndarray:
    """1-based sequence number of each element within its group, ordered by the keys (first key most significant)."""
    order = np.lexsort((*reversed(order_keys), group))
    sorted_group = group[order]
    first = np.r_[0, np.flatnonzero(np.diff(sorted_group)) + 1]
    run_start = np.repeat(first, np.diff(np.r_[first, len(group)]))
    seq = np.empty(len(group), dtype=np.int64)
    seq[order] = np.arange(len(group)) - run_start + 1
    return seq


# --------------------------------------------------------------------------- insureds


@dataclass
class _Insureds:
    sector: np.ndarray
    city: np.ndarray
    region: np.ndarray  # 6-digit GB/T 2260 code
    industry: np.ndarray  # 4-digit GB/T 4754 class, -1 where no division maps to the sector
    revenue: np.ndarray  # yuan, at the first policy term
    employees: np.ndarray
    score: np.ndarray  # pre-bind security score; the insurer does not see it where score_missing
    score_missing: np.ndarray
    frequency: np.ndarray  # expected incidents per policy-year
    insurer: np.ndarray
    co_insurer: np.ndarray  # -1 unless a second insurer covers the risk concurrently
    start_month: np.ndarray
    start_day: np.ndarray  # day of month of inception, kept at renewal
    n_terms: np.ndarray
    product: np.ndarray
    sections: np.ndarray  # bitmask over coverage sections in seed order
    limit: np.ndarray  # yuan
    co_limit: np.ndarray  # yuan, the co-insurer's limit
    deductible: np.ndarray  # yuan
    currency_draw: np.ndarray  # uniform draw that picks a policy's currency from its insurer's currency shares
    standalone: np.ndarray
    pilot_year: np.ndarray  # 0 outside the pilot
    name_parts: np.ndarray  # [n, 4]: first syllable, second syllable, business word, legal form


_CITIES = tuple((prov, code, name) for prov, (_, cities) in _PROVINCES.items() for code, name in cities)


def _draw_insureds(rng: np.random.Generator, p: MarketParams, ref: _Reference, win: _Window,
                   mk: _Market) -> _Insureds:
    n = p.n_insureds
    n_sectors = len(ref.sectors)
    profile = np.array([_SECTOR_PROFILE[s] for s in ref.sectors])
    sector = _choice(rng, profile[:, 0], n)
    insurer = _choice(rng, mk.share, n)

    city = _categorical(rng, mk.city_weight, insurer)
    city_prefix = np.array([int(prov + code) for prov, code, _ in _CITIES])
    region = city_prefix[city] * 100 + rng.integers(1, 10, n)

    industry = np.full(n, -1, dtype=np.int64)
    for s in range(n_sectors):
        divisions = ref.sector_divisions[s]
        members = np.flatnonzero(sector == s)
        if len(divisions) and len(members):
            division = divisions[rng.integers(0, len(divisions), len(members))]
            industry[members] = division * 100 + rng.integers(1, 5, len(members)) * 10 + rng.integers(0, 10, len(members))

    revenue = np.round(profile[sector, 1] * np.exp(1.5 * rng.standard_normal(n)), 2).clip(1e6)
    employees = np.maximum(np.round(revenue / 1e6 * np.exp(0.6 * rng.standard_normal(n))), 5).astype(np.int64)
    score = np.clip(np.round(65 + 15 * rng.standard_normal(n)), 5, 99).astype(np.int64)
    score_missing = rng.random(n) < 0.10
    size_factor = np.clip((revenue / 1e8) ** 0.2, 0.5, 3.0)
    frequency = (_BASE_FREQUENCY * profile[sector, 2] * size_factor * np.exp(0.025 * (65 - score))
                 * p.frequency_scale)

    # The first underwriting year holds the existing book; later months add new business.
    n_months = win.last_month - win.first_month + 1
    year = np.arange(n_months) // 12
    month_weight = np.where(year == 0, 1.0, _NEW_BUSINESS * _BOOK_GROWTH ** (year - 1.0))
    start_month = win.first_month + _choice(rng, month_weight, n)
    start_day = rng.integers(1, 29, n)
    renewals_until_lapse = rng.geometric(1 - _RENEWAL_RATE, n)
    n_terms = np.minimum(renewals_until_lapse, (win.last_month - start_month) // 12 + 1)

    # A co-insurer is any other insurer of the market (none in a market of one).
    co_insured = rng.random(n) < _CO_INSURED_SHARE
    n_insurers = len(mk.ids)
    co_insurer = (np.where(co_insured, (insurer + rng.integers(1, n_insurers, n)) % n_insurers, -1)
                  if n_insurers > 1 else np.full(n, -1, dtype=np.int64))

    product_weight = np.tile(_weights({k: v[0] for k, v in _PRODUCTS.items()}, ref.products), (n_sectors, 1))
    tech = [ref.products.index(c) for c in ("it_product_liability", "security_product", "security_services_pl")]
    product_weight[ref.sectors.index("telecom_internet"), tech] *= _TECH_PRODUCT_TILT
    product = _categorical(rng, product_weight, sector)
    sections = np.zeros(n, dtype=np.int64)
    for k, code in enumerate(ref.products):
        _, core, optional = _PRODUCTS[code]
        members = np.flatnonzero(product == k)
        size = min(_MAX_SECTIONS, len(core) + len(optional))
        n_optional = rng.integers(0, size - len(core) + 1, len(members))
        # A random priority per optional section; each insured takes its n_optional best.
        rank = np.argsort(np.argsort(rng.random((len(members), len(optional))), axis=1), axis=1)
        bits = sum(1 << ref.sections.index(s) for s in core) + np.zeros(len(members), dtype=np.int64)
        for j, s in enumerate(optional):
            bits |= np.where(rank[:, j] < n_optional, 1 << ref.sections.index(s), 0)
        sections[members] = bits

    def limit_index() -> np.ndarray:
        raw = 1.3 * (np.log10(revenue) - 7.3) + 1.5 + 0.8 * rng.standard_normal(n)
        return np.clip(np.round(raw), 0, len(_LIMIT_LADDER) - 1).astype(np.int64)

    limit = _LIMIT_LADDER[limit_index()]
    co_limit = _LIMIT_LADDER[limit_index()]
    deductible = np.where(rng.random(n) < 0.1, 0.0,
                          np.round(limit * _DEDUCTIBLE_SHARE[rng.integers(0, len(_DEDUCTIBLE_SHARE), n)], -3))
    currency_draw = rng.random(n)
    standalone = rng.random(n) < 0.9
    in_pilot = ref.is_pilot[sector] & (rng.random(n) < _PILOT_SHARE)
    pilot_year = np.where(in_pilot, np.where(rng.random(n) < 0.4, 2023, 2024), 0)

    suffix = _choice(rng, np.array([w for _, w in _NAME_SUFFIX]), n)
    name_parts = np.column_stack([
        rng.integers(0, len(_NAME_FIRST), n), rng.integers(0, len(_NAME_SECOND), n),
        rng.integers(0, 3, n), suffix,
    ])
    return _Insureds(
        sector=sector, city=city, region=region, industry=industry, revenue=revenue, employees=employees,
        score=score, score_missing=score_missing, frequency=frequency, insurer=insurer, co_insurer=co_insurer,
        start_month=start_month, start_day=start_day, n_terms=n_terms, product=product, sections=sections,
        limit=limit, co_limit=co_limit, deductible=deductible, currency_draw=currency_draw,
        standalone=standalone, pilot_year=pilot_year, name_parts=name_parts,
    )


# --------------------------------------------------------------------------- policies


@dataclass
class _Policies:
    insured: np.ndarray
    insurer: np.ndarray
    term: np.ndarray  # 0 for the first term, +1 per renewal
    inception: np.ndarray  # day
    expiry: np.ndarray  # day
    limit: np.ndarray  # yuan
    premium: np.ndarray  # yuan
    currency: np.ndarray
    co_policy: np.ndarray  # for a lead policy: row of the co-insurer's concurrent policy, else -1
    is_lead: np.ndarray


def _draw_policies(rng: np.random.Generator, ref: _Reference, ins: _Insureds, win: _Window,
                   mk: _Market) -> _Policies:
    """Lead terms of every insured plus the co-insurers' concurrent terms, ordered by insurer, inception, insured."""
    insured, term = _group_offsets(ins.n_terms)
    inception_month = ins.start_month[insured] + 12 * term
    day_offset = ins.start_day[insured] - 1
    inception = _month_start(inception_month) + day_offset
    expiry = _month_start(inception_month + 12) + day_offset - 1
    n_lead = len(insured)

    co_rows = np.flatnonzero(ins.co_insurer[insured] >= 0)
    all_rows = np.r_[np.arange(n_lead), co_rows]
    is_lead = np.arange(len(all_rows)) < n_lead
    insured_all = insured[all_rows]
    insurer = np.where(is_lead, ins.insurer[insured_all], ins.co_insurer[insured_all])
    limit = np.where(is_lead, ins.limit[insured_all], ins.co_limit[insured_all])
    term_all = term[all_rows]

    known_score = np.where(ins.score_missing, 65, ins.score)[insured_all]
    sector_rate = np.array([_SECTOR_PROFILE[s][2] for s in ref.sectors]) ** 0.8
    premium = (_PREMIUM_AT_1M * (limit / 1e6) ** 0.65 * sector_rate[ins.sector[insured_all]]
               * np.clip((ins.revenue[insured_all] / 1e8) ** 0.1, 0.7, 1.5)
               * np.exp(0.012 * (65 - known_score)) * np.exp(0.2 * rng.standard_normal(len(all_rows)))
               * _RATE_TREND ** ((inception_month[all_rows] - win.first_month) // 12)
               * np.where(is_lead, 1.0, _CO_INSURER_PREMIUM_SHARE))
    co_policy = np.full(len(all_rows), -1, dtype=np.int64)
    co_policy[co_rows] = np.arange(n_lead, len(all_rows))

    order = np.lexsort((insured_all, inception[all_rows], insurer))
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    co_policy = np.where(co_policy >= 0, position[np.maximum(co_policy, 0)], -1)
    return _Policies(
        insured=insured_all[order], insurer=insurer[order], term=term_all[order],
        inception=inception[all_rows][order], expiry=expiry[all_rows][order], limit=limit[order],
        premium=np.round(premium)[order],
        currency=mk.currency_of(insurer, ins.currency_draw[insured_all])[order],
        co_policy=co_policy[order], is_lead=is_lead[order],
    )


# --------------------------------------------------------------------------- incidents


@dataclass
class _Incidents:
    """One row per incident as reported by one insurer (co-insured incidents appear once per insurer),
    ordered by insurer, reported, occurred, policy."""

    policy: np.ndarray
    occurred: np.ndarray
    discovered: np.ndarray
    reported: np.ndarray
    resolved: np.ndarray  # -1 while unresolved at the cut-off
    incident_type: np.ndarray
    attack_vector: np.ndarray
    cve_key: np.ndarray  # 0 none; else 1 + first CVE + (1 + second CVE) * len(_CVES)
    records: np.ndarray  # -1 where no records were stolen
    data_types: np.ndarray  # bitmask over data types in seed order
    downtime: np.ndarray  # hours, NaN when unknown
    event: np.ndarray  # index into the events inside the window, -1 for attritional incidents
    occurrence: np.ndarray  # the occurrence reported: equal for each insurer's report of a co-insured incident


def _events_in_window(win: _Window) -> tuple[_Event, ...]:
    return tuple(e for e in _EVENTS
                 if _month_start(np.array(win.first_month)) <= _day(e.start) <= win.cutoff)


def _day(iso: str) -> int:
    return int(np.datetime64(iso, "D").astype(np.int64))


def _draw_incidents(rng: np.random.Generator, p: MarketParams, ref: _Reference, win: _Window,
                    ins: _Insureds, pol: _Policies) -> _Incidents:
    lead = np.flatnonzero(pol.is_lead)
    counts = rng.poisson(ins.frequency[pol.insured[lead]])
    base_policy = lead[np.repeat(np.arange(len(lead)), counts)]
    term_days = pol.expiry[base_policy] - pol.inception[base_policy] + 1
    occurred = pol.inception[base_policy] + np.floor(rng.random(len(base_policy)) * term_days).astype(np.int64)

    tilt = np.array([[_SECTOR_INCIDENT_TILT.get(s, {}).get(t, 1.0) for t in ref.incident_types] for s in ref.sectors])
    mix = _weights(_INCIDENT_MIX, ref.incident_types) * tilt
    incident_type = _categorical(rng, mix, ins.sector[pol.insured[base_policy]])
    event = np.full(len(base_policy), -1, dtype=np.int64)

    # Systemic events: many in-force insureds hit within days, whatever insurer covers them.
    events = _events_in_window(win)
    parts = [(base_policy, occurred, incident_type, event)]
    for k, e in enumerate(events):
        start = _day(e.start)
        in_force = lead[(pol.inception[lead] <= start) & (pol.expiry[lead] >= start)]
        hit = in_force[rng.random(len(in_force)) < min(e.hit_rate * p.frequency_scale, 1.0)]
        when = np.minimum(start + rng.integers(0, e.spread_days, len(hit)), pol.expiry[hit])
        parts.append((hit, when, np.full(len(hit), ref.incident_types.index(e.incident_type)),
                      np.full(len(hit), k)))
    base_policy, occurred, incident_type, event = (np.concatenate(a) for a in zip(*parts, strict=True))
    n = len(base_policy)

    vector_weights = np.array([_weights(_INCIDENT_PROFILE[t].vectors, ref.attack_vectors) for t in ref.incident_types])
    discovery_median = _profile_array(ref, "discovery_days")
    discovery_sigma = _profile_array(ref, "discovery_sigma")
    breach_share = _profile_array(ref, "breach_share")
    downtime_median = _profile_array(ref, "downtime_hours")
    attack_vector = _categorical(rng, vector_weights, incident_type)
    systemic = event >= 0
    # Event tables carry a trailing dummy entry that attritional incidents (event -1) index harmlessly.
    event_vector = np.array([ref.attack_vectors.index(e.attack_vector) for e in events] + [0])
    attack_vector = np.where(systemic, event_vector[event], attack_vector)

    discovered = occurred + _lognormal_days(rng, discovery_median[incident_type], discovery_sigma[incident_type], 1500)
    resolution = _lognormal_days(rng, np.full(n, 30.0), np.ones(n), 1000)

    cve_years = np.array([y for _, y in _CVES])
    eligible = np.searchsorted(cve_years, _year_of(occurred), side="right")
    exploit = attack_vector == ref.attack_vectors.index("vulnerability_exploit")
    named = exploit & (rng.random(n) < _CVE_NAMED) & (eligible > 0)
    first_cve = np.floor(rng.random(n) * eligible).astype(np.int64)
    second_cve = np.floor(rng.random(n) * eligible).astype(np.int64)
    chained = named & (rng.random(n) < _CVE_CHAINED) & (second_cve != first_cve)
    cve_key = np.where(named, 1 + first_cve + np.where(chained, (1 + second_cve) * len(_CVES), 0), 0)
    cve_of_event = np.array([[c for c, _ in _CVES].index(e.ref) + 1 if e.is_cve else 0 for e in events] + [0])
    cve_key = np.where(systemic, cve_of_event[event], cve_key)

    sector = ins.sector[pol.insured[base_policy]]
    breached = rng.random(n) < breach_share[incident_type]
    size = (ins.revenue[pol.insured[base_policy]] / 1e8) ** 0.3
    records = np.where(breached, np.ceil(np.minimum(3000 * size * np.exp(2.2 * rng.standard_normal(n)), 1e9)), -1)
    type_probability = np.array([[_SECTOR_DATA_TYPES.get(s, {}).get(d, _DATA_TYPE_PROBABILITY.get(d, 0.0))
                                  for d in ref.data_types] for s in ref.sectors])
    stolen = rng.random((n, len(ref.data_types))) < type_probability[sector]
    stolen_mask = (stolen * (1 << np.arange(len(ref.data_types)))).sum(axis=1)
    stolen_mask = np.where(stolen_mask == 0, 1 << ref.data_types.index("PII"), stolen_mask)
    data_types = np.where(breached, stolen_mask, 1 << ref.data_types.index(_NO_DATA))
    median_hours = downtime_median[incident_type]
    downtime = np.where(median_hours > 0, np.round(median_hours * np.exp(rng.standard_normal(n)), 1), 0.0)
    downtime = np.where(rng.random(n) < _DOWNTIME_UNKNOWN, np.nan, downtime)

    # A co-insured incident is reported to both insurers, each on its own timetable.
    source = np.r_[np.arange(n), np.flatnonzero(pol.co_policy[base_policy] >= 0)]
    policy = np.where(np.arange(len(source)) < n, base_policy[source], pol.co_policy[base_policy[source]])
    reported = discovered[source] + _lognormal_days(rng, np.full(len(source), 3.0), np.ones(len(source)), 720)
    resolved = np.maximum(discovered[source] + resolution[source], reported)
    resolved = np.where(resolved <= win.cutoff, resolved, -1)

    keep = reported <= win.cutoff
    source, policy, reported, resolved = source[keep], policy[keep], reported[keep], resolved[keep]
    order = np.lexsort((policy, occurred[source], reported, pol.insurer[policy]))
    source, policy, reported, resolved = source[order], policy[order], reported[order], resolved[order]
    return _Incidents(
        policy=policy, occurred=occurred[source], discovered=discovered[source], reported=reported,
        resolved=resolved, incident_type=incident_type[source], attack_vector=attack_vector[source],
        cve_key=cve_key[source], records=records[source].astype(np.int64), data_types=data_types[source],
        downtime=downtime[source], event=event[source], occurrence=source,
    )


# --------------------------------------------------------------------------- claims


@dataclass
class _Claims:
    incident: np.ndarray
    section: np.ndarray
    report: np.ndarray  # day
    close_month: np.ndarray
    close_day: np.ndarray
    status: np.ndarray  # status once closed
    indemnity: np.ndarray  # yuan paid by the first closure
    expense: np.ndarray  # yuan of ALAE by the first closure
    recovery: np.ndarray  # yuan recovered at the first closure
    reserve_basis: np.ndarray  # yuan the adjuster is ultimately heading for
    reserve_bias: np.ndarray  # initial over (>1) or under (<1) reserving, fading as the claim matures
    reopen_month: np.ndarray  # -1 if never reopened
    close2_month: np.ndarray
    close2_day: np.ndarray
    extra_indemnity: np.ndarray  # yuan paid after reopening
    extra_expense: np.ndarray

    def take(self, index: np.ndarray | slice) -> _Claims:
        return _Claims(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def rows_per_claim(self, last_month: int) -> tuple[np.ndarray, np.ndarray]:
        """Valuation rows before and after reopening, each cut at last_month."""
        report_month = _month_of(self.report)
        first_phase = np.minimum(self.close_month, last_month) - report_month + 1
        reopened = (self.reopen_month >= 0) & (self.reopen_month <= last_month)
        second_phase = np.where(reopened, np.minimum(self.close2_month, last_month) - self.reopen_month + 1, 0)
        return first_phase, second_phase


def _draw_claims(rng: np.random.Generator, ref: _Reference, win: _Window, ins: _Insureds, pol: _Policies,
                 inc: _Incidents) -> _Claims:
    claim_share = _profile_array(ref, "claim_share")
    n_inc = len(inc.policy)
    per_incident = (rng.random(n_inc) < claim_share[inc.incident_type]) * (1 + (rng.random(n_inc) < _SECOND_CLAIM))
    incident, order = _group_offsets(per_incident)
    n = len(incident)
    policy = inc.policy[incident]
    itype = inc.incident_type[incident]

    affinity = np.array([[_SECTION_AFFINITY[t].get(s, _SECTION_BASE_AFFINITY.get(s, 0.2)) for s in ref.sections]
                         for t in ref.incident_types])
    covered = (ins.sections[pol.insured[policy]][:, None] >> np.arange(len(ref.sections))) & 1
    # Gumbel-max draws one covered section per claim, weighted by affinity; the second claim of an
    # incident excludes the section of the first (its predecessor row).
    with np.errstate(divide="ignore"):
        log_weight = np.log(affinity[itype] * covered)
    section = np.empty(n, dtype=np.int64)
    for k in (0, 1):
        rows = np.flatnonzero(order == k)
        if k == 1:
            log_weight[rows, section[rows - 1]] = -np.inf
        gumbel = -np.log(-np.log(rng.random((len(rows), len(ref.sections)))))
        section[rows] = np.argmax(log_weight[rows] + gumbel, axis=1)

    first_lag = np.where(rng.random(n) < 0.6, 0, rng.geometric(0.1, n))
    later_lag = np.floor(rng.exponential(30.0, n)).astype(np.int64)
    report = inc.reported[incident] + np.where(order == 0, first_lag, later_lag)
    keep = report <= win.cutoff
    incident, order, policy, itype, section, report = (
        a[keep] for a in (incident, order, policy, itype, section, report))
    n = len(incident)

    severity_factor = _profile_array(ref, "severity")
    section_factor = _weights(_SECTION_SEVERITY, ref.sections)
    body = _SEVERITY_MEDIAN * np.exp(_SEVERITY_SIGMA * rng.standard_normal(n))
    tail = _TAIL_THRESHOLD * rng.random(n) ** (-1 / _TAIL_ALPHA)
    ground_up = (np.where(rng.random(n) < _TAIL_SHARE, tail, body)
                 * np.clip((ins.revenue[pol.insured[policy]] / 1e8) ** 0.25, 0.4, 4.0)
                 * severity_factor[itype] * section_factor[section] * np.where(order == 0, 1.0, 0.6))
    net = np.round(np.maximum(np.minimum(ground_up, pol.limit[policy]) - ins.deductible[pol.insured[policy]], 0), 2)

    u = rng.random(n)
    status = np.select(
        [u < _DENIED, u < _DENIED + _WITHDRAWN, (u < _DENIED + _WITHDRAWN + _NO_PAYMENT) | (net == 0)],
        [_DENIED_STATUS, _WITHDRAWN_STATUS, _CLOSED_NO_PAYMENT], _CLOSED_PAID)
    paid = status == _CLOSED_PAID
    indemnity = np.where(paid, net, 0.0)

    # Bigger claims take longer to settle; claims closed without payment settle quickly.
    median_months = np.where(paid, 8.0 * (np.maximum(indemnity, 1e3) / 1e5) ** 0.15,
                             np.where(status == _CLOSED_NO_PAYMENT, 3.0, 2.0))
    settle = np.clip(np.round(median_months * np.exp(0.6 * rng.standard_normal(n))), 0, _MAX_SETTLEMENT_MONTHS)
    report_month = _month_of(report)
    close_month = report_month + settle.astype(np.int64)
    close_day = _random_day_in(rng, close_month, earliest=report)

    expense = np.round(np.select(
        [paid, status == _CLOSED_NO_PAYMENT, status == _DENIED_STATUS],
        [indemnity * rng.uniform(0.10, 0.20, n) + 3000 * np.exp(0.5 * rng.standard_normal(n)),
         8000 * np.exp(0.8 * rng.standard_normal(n)), 3000 * np.exp(0.8 * rng.standard_normal(n))],
        np.where(rng.random(n) < 0.5, 0.0, 1000 * np.exp(0.5 * rng.standard_normal(n)))), 2)
    recovery = np.where(paid & (rng.random(n) < _RECOVERY), np.round(indemnity * rng.uniform(0.05, 0.3, n), 2), 0.0)
    # Claims that end without payment still carry a reserve until the adjuster decides.
    phantom = np.where(net > 0, net * rng.uniform(0.2, 0.8, n), 20_000 * np.exp(rng.standard_normal(n)))
    reserve_basis = np.where(paid, indemnity, phantom)
    reserve_bias = 0.85 * np.exp(0.5 * rng.standard_normal(n))

    reopens = np.isin(status, (_CLOSED_PAID, _CLOSED_NO_PAYMENT)) & (rng.random(n) < _REOPEN)
    reopen_month = np.where(reopens, close_month + rng.integers(2, 13, n), -1)
    close2_month = np.where(reopens, reopen_month + rng.integers(1, 7, n), -1)
    close2_day = np.where(reopens, _random_day_in(rng, np.maximum(close2_month, 0)), -1)
    # A reopened claim pays more, but never beyond what is left of the policy limit.
    extra = np.minimum(np.where(paid, indemnity * rng.uniform(0.1, 0.5, n), 30_000 * np.exp(rng.standard_normal(n))),
                       np.maximum(pol.limit[policy] - indemnity, 0))
    extra_indemnity = np.where(reopens & (rng.random(n) < 0.7), np.round(extra, 2), 0.0)
    extra_expense = np.where(reopens, np.round(0.15 * extra_indemnity + 2000, 2), 0.0)
    return _Claims(
        incident=incident, section=section, report=report, close_month=close_month, close_day=close_day,
        status=status, indemnity=indemnity, expense=expense, recovery=recovery, reserve_basis=reserve_basis,
        reserve_bias=reserve_bias, reopen_month=reopen_month, close2_month=close2_month, close2_day=close2_day,
        extra_indemnity=extra_indemnity, extra_expense=extra_expense,
    )


def _random_day_in(rng: np.random.Generator, month: np.ndarray, earliest: np.ndarray | None = None) -> np.ndarray:
    first = _month_start(month) if earliest is None else np.maximum(_month_start(month), earliest)
    span = _month_end(month) - first + 1
    return first + np.floor(rng.random(len(month)) * span).astype(np.int64)


# --------------------------------------------------------------------------- claim development


@dataclass
class _Valuations:
    claim: np.ndarray
    month: np.ndarray
    status: np.ndarray
    closed: np.ndarray  # closed day, -1 while open
    paid_indemnity: np.ndarray  # cents, policy currency
    paid_expense: np.ndarray
    case_reserve: np.ndarray
    recoveries: np.ndarray


def _develop(rng: np.random.Generator, ref: _Reference, win: _Window, clm: _Claims,
             currency: np.ndarray) -> _Valuations:
    """One row per claim and month-end from report to closure (and again after reopening), ≤ cut-off.

    Amounts are built cumulatively in yuan; paid amounts are converted to the policy currency
    increment by increment at the rate of the month paid (so they never fall), the case reserve
    at the valuation month's rate.
    """
    first_phase, second_phase = clm.rows_per_claim(win.last_month)
    claim, k = _group_offsets(first_phase + second_phase)
    n1 = first_phase[claim]
    later = k >= n1
    report_month = _month_of(clm.report)[claim]
    month = np.where(later, clm.reopen_month[claim] + k - n1, report_month + k)

    duration = clm.close_month[claim] - report_month
    progress = np.where(duration > 0, k / np.maximum(duration, 1), 1.0)
    closed_first = ~later & (k == duration)
    duration2 = clm.close2_month[claim] - clm.reopen_month[claim]
    k2 = k - n1
    closed_second = later & (k2 == duration2)

    indemnity, extra = clm.indemnity[claim], clm.extra_indemnity[claim]
    instalments = np.floor(4 * np.minimum(progress, 1) ** _PAYMENT_SHAPE) / 4
    paid_indemnity = np.where(later, indemnity + np.where(closed_second, extra, 0.0),
                              np.where(closed_first, indemnity, indemnity * instalments))
    paid_expense = np.where(later, clm.expense[claim] + clm.extra_expense[claim] * (k2 + 1) / (duration2 + 1),
                            clm.expense[claim] * (k + 1) / (duration + 1))
    recoveries = np.where(later | closed_first, clm.recovery[claim], 0.0)

    basis = clm.reserve_basis[claim]
    noise = np.exp(0.1 * rng.standard_normal(len(claim)))
    estimate = basis * clm.reserve_bias[claim] ** (1 - np.minimum(progress, 1)) * noise
    reserve_first = np.maximum(estimate - paid_indemnity, 0.05 * basis)
    reserve_second = np.maximum(extra, 0.3 * np.maximum(indemnity, 20_000)) * noise
    reserve = np.round(np.where(later, reserve_second, reserve_first), -2)
    reserve = np.where(closed_first | closed_second, 0.0, reserve)

    final_second = np.where(indemnity + extra > 0, _CLOSED_PAID, _CLOSED_NO_PAYMENT)
    status = np.where(later, np.where(closed_second, final_second, _REOPENED),
                      np.where(closed_first, clm.status[claim], _OPEN))
    closed = np.select([closed_first, closed_second], [clm.close_day[claim], clm.close2_day[claim]], -1)

    rate = ref.fx[currency[claim], month - ref.fx_first_month]
    counts = first_phase + second_phase
    starts = np.cumsum(counts) - counts

    def paid_in_currency(cumulative_yuan: np.ndarray) -> np.ndarray:
        cents = np.round(cumulative_yuan * 100).astype(np.int64)
        increment = np.diff(cents, prepend=0)
        increment[starts] = cents[starts]
        converted = np.round(increment / rate).astype(np.int64)
        total = np.cumsum(converted)
        return total - np.repeat(total[starts] - converted[starts], counts)

    return _Valuations(
        claim=claim, month=month, status=status, closed=closed,
        paid_indemnity=paid_in_currency(paid_indemnity), paid_expense=paid_in_currency(paid_expense),
        case_reserve=np.round(reserve * 100 / rate).astype(np.int64), recoveries=paid_in_currency(recoveries),
    )


# --------------------------------------------------------------------------- frame building


_DTYPES: dict[str, pl.DataType] = {
    "identifier": pl.String(), "str": pl.String(), "code": pl.String(), "currency": pl.String(),
    "date": pl.Date(), "money": pl.Decimal(MONEY_PRECISION, MONEY_SCALE),
    "revenue": pl.Decimal(REVENUE_PRECISION, MONEY_SCALE), "int": pl.Int64(), "number": pl.Float64(),
    "bool": pl.Boolean(), "code_list": pl.List(pl.String), "str_list": pl.List(pl.String),
}


def schema(record_type: str) -> dict[str, pl.DataType]:
    """Columns and dtypes of a simulated policy / incident / claim_valuation frame, in order."""
    return {"insurer_id": pl.String(), "submission_month": pl.Date(),
            **{f.name: _DTYPES[f.kind] for f in FIELDS[record_type]}}


def _conform(columns: dict[str, pl.Series], record_type: str) -> pl.DataFrame:
    frame = pl.DataFrame([columns[name].alias(name) for name in schema(record_type)])
    if frame.schema != pl.Schema(schema(record_type)):
        raise AssertionError(f"{record_type} frame does not match its schema: {frame.schema}")
    return frame


def _dates(days: np.ndarray, null: np.ndarray | None = None) -> pl.Series:
    return pl.from_arrow(pa.array(days.astype(np.int32), mask=null)).cast(pl.Date)


def _money(cents: np.ndarray, precision: int = MONEY_PRECISION) -> pl.Series:
    """Exact decimals from integer cents (no float round-trip), via a 128-bit arrow buffer."""
    words = np.empty((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = cents >> 63  # sign extension to 128 bits
    array = pa.Array.from_buffers(pa.decimal128(precision, MONEY_SCALE), len(cents), [None, pa.py_buffer(words)])
    return pl.from_arrow(array)


def _to_cents(yuan: np.ndarray, rate: np.ndarray) -> np.ndarray:
    return np.round(yuan * 100 / rate).astype(np.int64)


def _codes(codes: tuple[str, ...] | list[str], index: np.ndarray) -> pl.Series:
    return pl.Series(list(codes), dtype=pl.String).gather(index)


def _lists(keys: np.ndarray, decode: Callable[[int], list[str]]) -> pl.Series:
    distinct, inverse = np.unique(keys, return_inverse=True)
    return pl.Series([decode(int(k)) for k in distinct], dtype=pl.List(pl.String)).gather(inverse)


def _industry_codes(industry: np.ndarray) -> pl.Series:
    return pl.Series(industry, dtype=pl.Int64).cast(pl.String).str.zfill(4).set(pl.Series(industry < 0), None)


def _bits(codes: tuple[str, ...]) -> Callable[[int], list[str]]:
    return lambda mask: [c for i, c in enumerate(codes) if mask >> i & 1]


def _render_numbers(mk: _Market, kind: str, insurer: np.ndarray, year: np.ndarray, seq: np.ndarray) -> pl.Series:
    order = np.argsort(insurer, kind="stable")
    bounds = np.searchsorted(insurer[order], np.arange(len(mk.ids) + 1))
    frame = pl.DataFrame({"year": year[order], "seq": seq[order]})
    rendered = pl.concat([
        frame.slice(lo, hi - lo).select(_pattern_expr(patterns[kind])).to_series()
        for patterns, lo, hi in zip(mk.numbers, bounds[:-1], bounds[1:], strict=True)
    ])
    return rendered.gather(np.argsort(order)).alias(kind)


def _pattern_expr(pattern: str) -> pl.Expr:
    parts: list[pl.Expr] = []
    for literal, field, spec, _ in string.Formatter().parse(pattern):
        if literal:
            parts.append(pl.lit(literal))
        if field == "yyyy":
            parts.append(pl.col("year").cast(pl.String))
        elif field == "yy":
            parts.append((pl.col("year") % 100).cast(pl.String).str.zfill(2))
        elif field == "seq":
            parts.append(pl.col("seq").cast(pl.String).str.zfill(int(spec)))
        elif field is not None:
            raise ValueError(f"unknown field {field!r} in number pattern {pattern!r}")
    return pl.concat_str(parts)


def _insured_name(ins: _Insureds, ref: _Reference) -> pl.Series:
    words = [w for s in ref.sectors for w in _NAME_WORDS[s]]
    parts = ins.name_parts
    return pl.DataFrame([
        _codes([name for _, _, name in _CITIES], ins.city), _codes(list(_NAME_FIRST), parts[:, 0]),
        _codes(list(_NAME_SECOND), parts[:, 1]), _codes(words, ins.sector * 3 + parts[:, 2]),
        _codes([s for s, _ in _NAME_SUFFIX], parts[:, 3]),
    ]).select(pl.concat_str(pl.all())).to_series()


def _description(rng: np.random.Generator, ref: _Reference, mk: _Market, inc: _Incidents, insurer: np.ndarray,
                 events: tuple[_Event, ...]) -> pl.Series:
    n = len(inc.policy)
    english = mk.english[insurer].astype(np.int64)
    templates = [_DESCRIPTIONS[t][lang] for lang in (0, 1) for t in ref.incident_types]
    contact = rng.random(n) < _CONTACT_SHARE
    phone = 10_000_000_000 + rng.integers(3, 10, n) * 1_000_000_000 + rng.integers(0, 1_000_000_000, n)
    frame = pl.DataFrame([
        _codes(templates, inc.incident_type + english * len(ref.incident_types)).alias("text"),
        _codes([f"（{e.ref}）" for e in events] + [f" ({e.ref})" for e in events] + [""],
               np.where(inc.event >= 0, inc.event + english * len(events), 2 * len(events))).alias("event"),
        _codes(["；联系人 ", "; contact "], english).alias("lead"),
        _codes(list(_SURNAMES), rng.integers(0, len(_SURNAMES), n)).alias("surname"),
        _codes(list(_GIVEN_NAMES), rng.integers(0, len(_GIVEN_NAMES), n)).alias("given"),
        pl.Series("phone", phone),
        pl.Series("contact", contact),
    ])
    leak = pl.concat_str(pl.col("lead"), pl.col("surname"), pl.col("given"), pl.lit(" "),
                         pl.col("phone").cast(pl.String))
    return frame.select(pl.concat_str(
        pl.col("text"), pl.col("event"), pl.when(pl.col("contact")).then(leak).otherwise(pl.lit("")))
    ).to_series()


def _policy_frame(ref: _Reference, mk: _Market, ins: _Insureds, pol: _Policies, numbers: pl.Series,
                  insured_id: pl.Series, insured_name: pl.Series) -> pl.DataFrame:
    who = pol.insured
    month = _month_of(pol.inception)
    rate = ref.fx[pol.currency, month - ref.fx_first_month]
    revenue = np.round(ins.revenue[who] * _REVENUE_GROWTH ** pol.term, 2)
    pilot_year = ins.pilot_year[who]
    has_pilot = (pilot_year > 0) & (_year_of(pol.inception) >= pilot_year)
    pilot_code = pl.DataFrame({"year": pilot_year, "sector": _codes(
        [_PILOT_ABBREVIATION.get(s, "") for s in ref.sectors], ins.sector[who])}).select(
        pl.when(pl.Series(has_pilot)).then(pl.concat_str(pl.lit("PILOT-"), pl.col("year").cast(pl.String),
                                                         pl.lit("-"), pl.col("sector")))).to_series()
    score = ins.score[who]
    columns = {
        "insurer_id": _codes(mk.ids, pol.insurer),
        "submission_month": _dates(_month_start(month)),
        "policy_number": numbers,
        "insured_id": insured_id.gather(who),
        "insured_name": insured_name.gather(who),
        "industry_code": _industry_codes(ins.industry[who]),
        "sector_code": _codes(ref.sectors, ins.sector[who]),
        "region_code": pl.Series(ins.region[who]).cast(pl.String),
        "annual_revenue": _money(_to_cents(revenue, rate), REVENUE_PRECISION),
        "employee_count": pl.Series(ins.employees[who], dtype=pl.Int64),
        "product_type": _codes(ref.products, ins.product[who]),
        "coverage_sections": _lists(ins.sections[who], _bits(ref.sections)),
        "inception_date": _dates(pol.inception),
        "expiry_date": _dates(pol.expiry),
        "limit_amount": _money(_to_cents(pol.limit, rate)),
        "deductible": _money(_to_cents(ins.deductible[who], rate)),
        "written_premium": _money(_to_cents(pol.premium, rate)),
        "currency": _codes(ref.currencies, pol.currency),
        "is_standalone": pl.Series(ins.standalone[who]),
        "pilot_code": pilot_code,
        "risk_assessment_score": pl.Series(score, dtype=pl.Int64).set(pl.Series(ins.score_missing[who]), None),
    }
    return _conform(columns, "policy")


def _cve_list(key: int) -> list[str]:
    names = [c for c, _ in _CVES]
    if key == 0:
        return []
    first, second = (key - 1) % len(_CVES), (key - 1) // len(_CVES) - 1
    return [names[first]] + ([names[second]] if second >= 0 else [])


def _incident_frame(rng: np.random.Generator, ref: _Reference, mk: _Market, inc: _Incidents, pol: _Policies,
                    policy_numbers: pl.Series, incident_numbers: pl.Series, insured_id: pl.Series,
                    events: tuple[_Event, ...]) -> pl.DataFrame:
    insurer = pol.insurer[inc.policy]
    columns = {
        "insurer_id": _codes(mk.ids, insurer),
        "submission_month": _dates(_month_start(_month_of(inc.reported))),
        "incident_number": incident_numbers,
        "policy_number": policy_numbers.gather(inc.policy),
        "insured_id": insured_id.gather(pol.insured[inc.policy]),
        "occurred_date": _dates(inc.occurred),
        "discovered_date": _dates(inc.discovered),
        "reported_date": _dates(inc.reported),
        "resolved_date": _dates(inc.resolved, null=inc.resolved < 0),
        "incident_type": _codes(ref.incident_types, inc.incident_type),
        "attack_vector": _codes(ref.attack_vectors, inc.attack_vector),
        "cve_ids": _lists(inc.cve_key, _cve_list),
        "records_affected": pl.Series(inc.records, dtype=pl.Int64).set(pl.Series(inc.records < 0), None),
        "data_types": _lists(inc.data_types, _bits(ref.data_types)),
        "downtime_hours": pl.Series(inc.downtime, dtype=pl.Float64).fill_nan(None),
        # A trailing null entry for attritional incidents (event -1), so a window without events works too.
        "systemic_event_ref": _codes([e.ref for e in events] + [None], np.where(inc.event >= 0, inc.event, len(events))),
        "description": _description(rng, ref, mk, inc, insurer, events),
    }
    # Truth only, beside the contract's fields: which reports are one occurrence (a co-insured incident is
    # reported to each insurer, whose layouts may then say its dates differently, e.g. without the day).
    return _conform(columns, "incident").with_columns(pl.Series("occurrence_id", inc.occurrence, dtype=pl.Int64))


def _valuation_frame(rng: np.random.Generator, ref: _Reference, mk: _Market, win: _Window, clm: _Claims,
                     insurer: np.ndarray, currency: np.ndarray, policy: np.ndarray, claim_numbers: pl.Series,
                     incident_numbers: pl.Series, policy_numbers: pl.Series) -> pl.DataFrame:
    """Claims come ordered by insurer and claim number, so the developed rows are in frame order.

    Development runs in chunks of whole claims to bound the memory of its row-level temporaries.
    """
    first_phase, second_phase = clm.rows_per_claim(win.last_month)
    ends = np.cumsum(first_phase + second_phase)
    total = int(ends[-1]) if len(ends) else 0
    cuts = np.searchsorted(ends, np.arange(_CHUNK_ROWS, total, _CHUNK_ROWS)) + 1
    bounds = np.unique(np.r_[0, cuts, len(ends)])
    parts = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        val = _develop(rng, ref, win, clm.take(slice(lo, hi)), currency[lo:hi])
        claim = val.claim + lo
        columns = {
            "insurer_id": _codes(mk.ids, insurer[claim]),
            "submission_month": _dates(_month_start(val.month)),
            "claim_number": claim_numbers.gather(claim),
            "incident_number": incident_numbers.gather(clm.incident[claim]),
            "policy_number": policy_numbers.gather(policy[claim]),
            "coverage_section": _codes(ref.sections, clm.section[claim]),
            "status": _codes(_STATUS, val.status),
            "report_date": _dates(clm.report[claim]),
            "closed_date": _dates(val.closed, null=val.closed < 0),
            "valuation_date": _dates(_month_end(val.month)),
            "paid_indemnity": _money(val.paid_indemnity),
            "paid_expense": _money(val.paid_expense),
            "case_reserve": _money(val.case_reserve),
            "recoveries": _money(val.recoveries),
            "currency": _codes(ref.currencies, currency[claim]),
            "reported_incurred": _money(val.paid_indemnity + val.paid_expense + val.case_reserve - val.recoveries),
        }
        parts.append(_conform(columns, "claim_valuation"))
    if not parts:
        return pl.DataFrame(schema=schema("claim_valuation"))
    return pl.concat(parts, rechunk=False)


def _insured_frame(ref: _Reference, mk: _Market, ins: _Insureds, pol: _Policies, insured_id: pl.Series,
                   insured_name: pl.Series) -> pl.DataFrame:
    first_inception = _month_start(ins.start_month) + ins.start_day - 1
    return pl.DataFrame([
        insured_id.alias("insured_id"),
        insured_name.alias("insured_name"),
        _codes(ref.sectors, ins.sector).alias("sector_code"),
        _industry_codes(ins.industry).alias("industry_code"),
        pl.Series("region_code", ins.region).cast(pl.String),
        _money(np.round(ins.revenue * 100).astype(np.int64), REVENUE_PRECISION).alias("annual_revenue_cny"),
        pl.Series("employee_count", ins.employees, dtype=pl.Int64),
        pl.Series("risk_assessment_score", ins.score, dtype=pl.Int64),
        pl.Series("score_reported", ~ins.score_missing),
        pl.Series("annual_frequency", ins.frequency, dtype=pl.Float64),
        _codes(mk.ids, ins.insurer).alias("lead_insurer"),
        _codes(mk.ids, np.maximum(ins.co_insurer, 0)).set(pl.Series(ins.co_insurer < 0), None).alias("co_insurer"),
        _dates(first_inception).alias("first_inception_date"),
        pl.Series("n_terms", ins.n_terms, dtype=pl.Int64),
        pl.Series("n_policies", np.bincount(pol.insured, minlength=len(ins.sector)), dtype=pl.Int64),
    ])


def _event_frame(events: tuple[_Event, ...], incidents: pl.DataFrame) -> pl.DataFrame:
    hits = (incidents.filter(pl.col("systemic_event_ref").is_not_null())
            .group_by("systemic_event_ref")
            .agg(pl.col("insured_id").n_unique().alias("n_insureds_hit"),
                 pl.col("insurer_id").n_unique().alias("n_insurers"),
                 pl.len().alias("n_incidents")))
    described = pl.DataFrame({
        "systemic_event_ref": [e.ref for e in events],
        "event_name": [e.name for e in events],
        "incident_type": [e.incident_type for e in events],
        "attack_vector": [e.attack_vector for e in events],
        "start_date": _dates(np.array([_day(e.start) for e in events], dtype=np.int64)),
    }, schema_overrides={c: pl.String for c in ("systemic_event_ref", "event_name", "incident_type", "attack_vector")})
    return (described.join(hits, on="systemic_event_ref", how="left")
            .with_columns(pl.col("n_insureds_hit", "n_insurers", "n_incidents").fill_null(0).cast(pl.Int64))
            .sort("start_date"))


# --------------------------------------------------------------------------- public API


@dataclass
class _Simulation:
    ref: _Reference
    market: _Market
    win: _Window
    rng: np.random.Generator
    insureds: _Insureds
    policies: _Policies
    incidents: _Incidents
    claims: _Claims


def _simulate(params: MarketParams, profiles: Sequence[SampleProfile] | None) -> _Simulation:
    if params.n_insureds < 1:
        raise ValueError("n_insureds must be positive")
    ref = _reference()
    mk = _Market.of(sample_market().profiles if profiles is None else profiles, ref)
    win = _Window.of(params, ref)
    rng = np.random.Generator(np.random.PCG64(params.seed))
    ins = _draw_insureds(rng, params, ref, win, mk)
    pol = _draw_policies(rng, ref, ins, win, mk)
    inc = _draw_incidents(rng, params, ref, win, ins, pol)
    clm = _draw_claims(rng, ref, win, ins, pol, inc)
    return _Simulation(ref, mk, win, rng, ins, pol, inc, clm)


def simulate_market(params: MarketParams, profiles: Sequence[SampleProfile] | None = None) -> dict[str, pl.DataFrame]:
    """Returns {"policy": df, "incident": df, "claim_valuation": df, "insured": df, "systemic_event": df}.

    The market's insurers are `profiles`, in that order (default: the sample profiles that have a valid
    mapping config, `cyberclaims.sample.profiles.sample_market`); shares are renormalized over them.

    policy / incident / claim_valuation carry insurer_id, submission_month and every canonical
    field of `ingestion.contract` in clear, with the dtypes of `schema(record_type)`; amounts
    are in the row's own currency; incidents also carry occurrence_id (truth only: equal for each
    insurer's report of one co-insured occurrence). insured and systemic_event describe the hidden truth.
    Row order: policies by insurer, inception, insured; incidents by insurer, reported date,
    occurred date, policy; claim valuations by insurer, claim sequence, valuation date; insureds
    as drawn; systemic events by start date. Numbers (policy/incident/claim) count up in that
    order within each insurer.
    """
    sim = _simulate(params, profiles)
    ref, mk, win, rng, ins, pol, inc, clm = (sim.ref, sim.market, sim.win, sim.rng, sim.insureds, sim.policies,
                                             sim.incidents, sim.claims)
    events = _events_in_window(win)

    insured_id = make_uscc(ins.region, rng)
    insured_name = _insured_name(ins, ref)
    policy_seq = _sequence_within(pol.insurer, pol.inception, pol.insured)
    policy_numbers = _render_numbers(mk, "policy", pol.insurer, _year_of(pol.inception), policy_seq)
    inc_insurer = pol.insurer[inc.policy]
    incident_seq = _sequence_within(inc_insurer, inc.reported, inc.occurred, inc.policy)
    incident_numbers = _render_numbers(mk, "incident", inc_insurer, _year_of(inc.reported), incident_seq)

    claim_insurer = pol.insurer[inc.policy[clm.incident]]
    claim_seq = _sequence_within(claim_insurer, clm.report, incident_seq[clm.incident], clm.section)
    order = np.lexsort((claim_seq, claim_insurer))
    clm, claim_seq, claim_insurer = clm.take(order), claim_seq[order], claim_insurer[order]
    claim_policy = inc.policy[clm.incident]
    claim_numbers = _render_numbers(mk, "claim", claim_insurer, _year_of(clm.report), claim_seq)

    incidents = _incident_frame(rng, ref, mk, inc, pol, policy_numbers, incident_numbers, insured_id, events)
    valuations = _valuation_frame(rng, ref, mk, win, clm, claim_insurer, pol.currency[claim_policy], claim_policy,
                                  claim_numbers, incident_numbers, policy_numbers)
    return {
        "policy": _policy_frame(ref, mk, ins, pol, policy_numbers, insured_id, insured_name),
        "incident": incidents,
        "claim_valuation": valuations,
        "insured": _insured_frame(ref, mk, ins, pol, insured_id, insured_name),
        "systemic_event": _event_frame(events, incidents),
    }


def estimate_valuation_rows(params: MarketParams, profiles: Sequence[SampleProfile] | None = None) -> int:
    """Claim-valuation rows simulate_market(params, profiles) would return, from a simulation of at most
    _PROBE_INSUREDS insureds that stops before building frames, scaled linearly in n_insureds."""
    probe = replace(params, n_insureds=min(params.n_insureds, _PROBE_INSUREDS))
    sim = _simulate(probe, profiles)
    first_phase, second_phase = sim.claims.rows_per_claim(sim.win.last_month)
    rows = int(first_phase.sum() + second_phase.sum())
    return round(rows * params.n_insureds / probe.n_insureds)


def params_for_target_rows(target_rows: int, seed: int = MarketParams.seed,
                           profiles: Sequence[SampleProfile] | None = None, **kw: object) -> MarketParams:
    """MarketParams (other fields from kw) whose n_insureds gives about target_rows claim valuations.

    Unless kw fixes frequency_scale, targets that would need more than _MAX_TARGET_INSUREDS
    insureds keep that many and scale claim frequency up instead (rows are linear in both).
    """
    if target_rows < 1:
        raise ValueError("target_rows must be positive")
    probe = MarketParams(seed=seed, n_insureds=_PROBE_INSUREDS, **kw)  # type: ignore[arg-type]
    profiles = sample_market().profiles if profiles is None else profiles
    probe_rows = estimate_valuation_rows(probe, profiles)
    if probe_rows == 0:
        raise ValueError(f"{probe} yields no claim valuations; widen the window or raise frequency_scale")
    n_insureds = target_rows * _PROBE_INSUREDS / probe_rows
    if n_insureds > _MAX_TARGET_INSUREDS and "frequency_scale" not in kw:
        probe = replace(probe, frequency_scale=probe.frequency_scale * n_insureds / _MAX_TARGET_INSUREDS)
        n_insureds = target_rows * _PROBE_INSUREDS / estimate_valuation_rows(probe, profiles)
    return replace(probe, n_insureds=max(1, round(n_insureds)))
