"""Calibration of the simulated market: its parameters, the market assumptions (sector, product,
incident and claim profiles) and the reference data they are checked against."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

import numpy as np

from cyberclaims.ingestion.taxonomy import read_seed
from cyberclaims.sample.profiles import SampleProfile


@dataclass(frozen=True)
class MarketParams:
    seed: int = 20240101
    n_insureds: int = 3000
    first_month: str = "2022-01"  # first accident/underwriting month
    last_month: str = "2025-12"  # last valuation month (data cut-off)
    frequency_scale: float = 1.0  # multiplies claim frequency (benchmarks use it to reach target row counts)


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
# (province, city code, city name) of every simulated city, in a fixed order.
_CITIES = tuple((prov, code, name) for prov, (_, cities) in _PROVINCES.items() for code, name in cities)
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


# Months are counted from 1970-01 (as in the draws).
def _month_index(year_month: str) -> int:
    return int(np.datetime64(year_month, "M").astype(np.int64))
