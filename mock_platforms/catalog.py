"""Static reference data the fake platforms draw from.

Generated 办件 (case records) are only useful for testing if they look like the real thing: real 行政区划代码
(GB/T 2260 administrative division codes), real permit items with their certificate and decision-document
names, plausible Chinese company and person names. Keeping these tables apart from the generator keeps the
generator about *how* records are assembled, and this module about *what* the world looks like.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Region:
    """A county- or city-level 行政区划 (administrative division).

    ``city`` is the short city name used at the front of company names (``连云港``), ``district`` the part
    that follows it (empty for a city-level code), and ``abbrev`` the one-character city abbreviation used in
    decision-document numbers (``连审批食经〔2026〕1234号``).
    """

    code: str
    name: str
    city: str
    district: str
    abbrev: str


REGIONS: tuple[Region, ...] = (
    Region("320700", "连云港市", "连云港", "", "连"),
    Region("320703", "连云港市连云区", "连云港", "连云区", "连"),
    Region("320706", "连云港市海州区", "连云港", "海州区", "连"),
    Region("320707", "连云港市赣榆区", "连云港", "赣榆区", "连"),
    Region("320722", "连云港市东海县", "连云港", "东海县", "连"),
    Region("320723", "连云港市灌云县", "连云港", "灌云县", "连"),
    Region("320724", "连云港市灌南县", "连云港", "灌南县", "连"),
    Region("320100", "南京市", "南京", "", "宁"),
    Region("320102", "南京市玄武区", "南京", "玄武区", "宁"),
    Region("320104", "南京市秦淮区", "南京", "秦淮区", "宁"),
    Region("320105", "南京市建邺区", "南京", "建邺区", "宁"),
    Region("320106", "南京市鼓楼区", "南京", "鼓楼区", "宁"),
    Region("320115", "南京市江宁区", "南京", "江宁区", "宁"),
    Region("320505", "苏州市虎丘区", "苏州", "虎丘区", "苏"),
    Region("320506", "苏州市吴中区", "苏州", "吴中区", "苏"),
    Region("320508", "苏州市姑苏区", "苏州", "姑苏区", "苏"),
    Region("110101", "北京市东城区", "北京", "东城区", "京"),
    Region("110102", "北京市西城区", "北京", "西城区", "京"),
    Region("110105", "北京市朝阳区", "北京", "朝阳区", "京"),
    Region("110108", "北京市海淀区", "北京", "海淀区", "京"),
    Region("310101", "上海市黄浦区", "上海", "黄浦区", "沪"),
    Region("310104", "上海市徐汇区", "上海", "徐汇区", "沪"),
    Region("310115", "上海市浦东新区", "上海", "浦东新区", "沪"),
    Region("330100", "杭州市", "杭州", "", "杭"),
    Region("330106", "杭州市西湖区", "杭州", "西湖区", "杭"),
    Region("330110", "杭州市余杭区", "杭州", "余杭区", "杭"),
    Region("440300", "深圳市", "深圳", "", "深"),
    Region("440304", "深圳市福田区", "深圳", "福田区", "深"),
    Region("440305", "深圳市南山区", "深圳", "南山区", "深"),
    Region("440106", "广州市天河区", "广州", "天河区", "穗"),
    Region("510107", "成都市武侯区", "成都", "武侯区", "蓉"),
    Region("420106", "武汉市武昌区", "武汉", "武昌区", "汉"),
)

# Division codes that were abolished but still appear in the first six digits of people's 身份证号 (ID card
# numbers): an ID number keeps the code of where it was first issued. A checksum-valid number from one of
# these is valid; validators that insist on current codes reject real citizens.
RETIRED_AREA_CODES: tuple[str, ...] = (
    "320705",  # 连云港市新浦区, merged into 海州区 in 2014
    "320721",  # 赣榆县, became 赣榆区 (320707) in 2014
    "110103",  # 北京市崇文区, merged into 东城区 in 2010
    "110104",  # 北京市宣武区, merged into 西城区 in 2010
    "320103",  # 南京市白下区, merged into 秦淮区 in 2013
    "320107",  # 南京市下关区, merged into 鼓楼区 in 2013
)


@dataclass(frozen=True, slots=True)
class PermitItem:
    """A 行政许可事项 (administrative licensing item) as an approval bureau publishes it.

    ``item_code`` is the 10-digit tail of SERVICECODE (the head is the issuing bureau's 统一社会信用代码).
    ``doc_abbrev`` goes into the decision number, ``cert_prefix`` into the certificate number (RESULT_CODE),
    ``years`` is the usual validity, and ``industries`` are words that make an applicant's name fit the item.
    """

    name: str
    item_code: str
    certificate_name: str
    decision_name: str
    doc_abbrev: str
    cert_prefix: str
    years: int
    industries: tuple[str, ...]
    personal_ok: bool


PERMIT_ITEMS: tuple[PermitItem, ...] = (
    PermitItem("食品经营许可", "4000117001", "食品经营许可证", "食品经营许可决定书", "食经", "JY", 5,
               ("餐饮管理", "餐饮", "食品", "超市", "酒店管理"), True),
    PermitItem("药品零售许可", "4000115002", "药品经营许可证", "药品零售许可决定书", "药零", "", 5,
               ("大药房", "医药连锁", "药店"), False),
    PermitItem("建筑工程施工许可", "4000312001", "建筑工程施工许可证", "建筑工程施工许可决定书", "建施", "",
               3, ("建设发展", "房地产开发", "置业"), False),
    PermitItem("公共场所卫生许可", "4000404003", "公共场所卫生许可证", "公共场所卫生许可决定书", "卫公", "",
               4, ("酒店管理", "美容美发", "洗浴服务", "健身服务"), True),
    PermitItem("道路运输经营许可", "4000203001", "道路运输经营许可证", "道路运输经营许可决定书", "道运", "",
               4, ("运输", "物流", "货运代理"), True),
    PermitItem("排污许可", "4000517002", "排污许可证", "排污许可决定书", "排污", "", 5,
               ("化工", "电镀", "印染", "环保科技"), False),
    PermitItem("特种设备使用登记", "4000919001", "特种设备使用登记证", "特种设备使用登记决定书", "特设",
               "", 5, ("机械制造", "起重设备", "锅炉"), False),
    PermitItem("医疗机构执业登记", "4000421005", "医疗机构执业许可证", "医疗机构执业登记决定书", "医执",
               "", 5, ("诊所", "口腔门诊", "医疗管理"), True),
    PermitItem("危险化学品经营许可", "4000907002", "危险化学品经营许可证", "危险化学品经营许可决定书",
               "危化", "", 3, ("化工贸易", "石化", "燃气"), False),
    PermitItem("出版物零售许可", "4001101001", "出版物经营许可证", "出版物零售许可决定书", "出零", "", 6,
               ("书店", "文化传媒", "图书"), True),
    PermitItem("人力资源服务许可", "4000822001", "人力资源服务许可证", "人力资源服务许可决定书", "人服", "",
               5, ("人力资源", "劳务派遣", "企业管理咨询"), False),
)

SURNAMES: tuple[str, ...] = (
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何",
    "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾", "肖", "田",
    "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁", "任", "沈", "欧阳",
    "司马", "诸葛",
)

GIVEN_NAME_CHARS: tuple[str, ...] = (
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超",
    "秀", "英", "华", "慧", "建", "国", "平", "刚", "桂", "兰", "文", "辉", "鑫", "宇", "浩", "晨", "欣",
    "怡", "梓", "涵", "子", "轩", "雨", "婷", "博", "思", "嘉", "德", "海", "云", "峰", "霞", "玲",
)

# 字号 (trade names): the distinctive middle part of a company name.
TRADE_NAMES: tuple[str, ...] = (
    "鑫源", "恒达", "华泰", "金海", "瑞丰", "宏图", "港城", "康泰", "盛世", "惠民", "百川", "天宇", "佳和",
    "鸿运", "永安", "汇通", "博远", "诚信", "聚福", "海润", "蓝湾", "云台", "花果山", "新合", "众邦",
    "君悦", "明德", "同济", "福满楼", "一品", "嘉禾", "锦程", "龙腾", "新世纪", "海之蓝",
)

# Shop words for 个体工商户 (individual businesses): named after the owner, e.g. 海州区王伟小吃店.
SHOP_WORDS: tuple[str, ...] = (
    "小吃店", "便利店", "理发店", "面馆", "副食品店", "诊所", "书店", "货运部", "水果店", "烧烤店",
)

# Village names for 村级集体经济组织 (village collectives), whose credit codes start with N2.
VILLAGE_NAMES: tuple[str, ...] = (
    "城东", "新坝", "朝阳", "花园", "前进", "红旗", "后庄", "大村", "孔望", "小营", "东风", "太平",
)

COMPANY_FORMS: tuple[str, ...] = ("有限公司", "有限公司", "有限公司", "有限责任公司", "股份有限公司")

# Mobile prefixes of the three carriers, enough to make CONTACT_PHONE look like a real 11-digit number.
MOBILE_PREFIXES: tuple[str, ...] = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155",
    "156", "157", "158", "159", "166", "177", "180", "181", "182", "183", "185", "186", "187", "188",
    "189", "198", "199",
)

PROMISE_TYPES: tuple[str, ...] = ("材料延期", "材料核验", "事后核查")

SECRET_LEVELS: tuple[str, ...] = ("秘密", "机密", "绝密")

# Departments that claim supervision tasks on 互联网+监管, by the permit item that created the task.
SUPERVISING_DEPARTMENTS: tuple[str, ...] = (
    "市场监督管理局", "卫生健康委员会", "住房和城乡建设局", "交通运输局", "生态环境局", "应急管理局",
    "人力资源和社会保障局", "文化广电和旅游局",
)
