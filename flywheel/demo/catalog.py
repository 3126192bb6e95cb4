"""Fixed ingredients of the demo brokerage 飞轮证券 (fictional): cities, branches, names,
fund companies, products, screens and search words. Weights are plausible, not statistics."""

from __future__ import annotations

#: (city, 6-digit region code used in ID numbers, branch weight)
CITIES: tuple[tuple[str, str, float], ...] = (
    ("上海", "310115", 1.6),
    ("北京", "110105", 1.5),
    ("深圳", "440305", 1.4),
    ("广州", "440106", 1.1),
    ("杭州", "330106", 1.0),
    ("南京", "320106", 0.8),
    ("成都", "510107", 0.9),
    ("武汉", "420106", 0.8),
    ("西安", "610113", 0.6),
    ("重庆", "500103", 0.7),
    ("天津", "120103", 0.6),
    ("苏州", "320508", 0.7),
    ("长沙", "430104", 0.6),
    ("郑州", "410105", 0.5),
    ("青岛", "370202", 0.5),
    ("厦门", "350203", 0.5),
    ("福州", "350102", 0.4),
    ("合肥", "340104", 0.4),
    ("济南", "370102", 0.4),
    ("沈阳", "210102", 0.4),
)

#: Branch (营业部) name suffixes, one per city in order.
BRANCH_DISTRICTS: tuple[str, ...] = (
    "浦东新区世纪大道",
    "朝阳区建国门外大街",
    "福田区深南大道",
    "天河区珠江新城",
    "西湖区文三路",
    "鼓楼区中山北路",
    "锦江区红星路",
    "江汉区建设大道",
    "雁塔区高新路",
    "渝中区解放碑",
    "和平区南京路",
    "工业园区星海街",
    "芙蓉区五一大道",
    "金水区花园路",
    "市南区香港中路",
    "思明区鹭江道",
    "鼓楼区五四路",
    "蜀山区长江西路",
    "历下区泺源大街",
    "和平区南京北街",
)

SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 7.1),
    ("李", 7.0),
    ("张", 6.7),
    ("刘", 5.4),
    ("陈", 4.6),
    ("杨", 3.1),
    ("黄", 2.4),
    ("赵", 2.3),
    ("吴", 2.0),
    ("周", 1.9),
    ("徐", 1.7),
    ("孙", 1.5),
    ("马", 1.5),
    ("朱", 1.3),
    ("胡", 1.3),
    ("郭", 1.1),
    ("何", 1.1),
    ("高", 1.0),
    ("林", 1.0),
    ("罗", 0.9),
    ("郑", 0.9),
    ("梁", 0.9),
    ("谢", 0.7),
    ("宋", 0.6),
    ("唐", 0.6),
    ("许", 0.6),
    ("韩", 0.5),
    ("冯", 0.5),
    ("邓", 0.5),
    ("曹", 0.5),
)

GIVEN_MALE: tuple[str, ...] = tuple(
    "伟强磊军洋勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林峰"
)
GIVEN_FEMALE: tuple[str, ...] = tuple(
    "芳娜敏静丽艳娟霞燕玲桂丹萍红琳雪婷慧莹颖倩琴云洁佳欣怡悦梅兰"
)

EMAIL_DOMAINS: tuple[str, ...] = ("qq.com", "163.com", "126.com", "sina.com", "foxmail.com")

#: Acquisition channels and their weights.
CHANNELS: tuple[tuple[str, float], ...] = (
    ("app_store", 0.30),
    ("wechat", 0.22),
    ("branch", 0.20),
    ("referral", 0.12),
    ("web", 0.08),
    ("bank_partner", 0.08),
)

#: Risk tolerance C1…C5 (适当性 assessment) and the share of customers at each level.
RISK_LEVELS: tuple[tuple[str, float], ...] = (
    ("C1", 0.08),
    ("C2", 0.22),
    ("C3", 0.38),
    ("C4", 0.22),
    ("C5", 0.10),
)

FUND_COMPANIES: tuple[str, ...] = (
    "易方达基金",
    "华夏基金",
    "南方基金",
    "广发基金",
    "富国基金",
    "汇添富基金",
    "嘉实基金",
    "博时基金",
    "招商基金",
    "中欧基金",
    "鹏华基金",
    "工银瑞信基金",
)

#: Fund category → (count, R-levels it can have, theme words, name suffix, min purchase)
FUND_CATEGORIES: tuple[tuple[str, int, tuple[int, ...], tuple[str, ...], str, float], ...] = (
    ("货币", 22, (1,), ("现金宝", "日日盈", "添利", "天天利"), "货币A", 0.01),
    ("债券", 40, (1, 2), ("纯债", "稳健收益", "信用债", "短债", "双债增强"), "债券A", 10.0),
    (
        "混合",
        50,
        (3, 4),
        ("价值精选", "成长优选", "均衡配置", "消费升级", "新兴产业"),
        "混合",
        10.0,
    ),
    ("股票", 30, (4, 5), ("医药健康", "新能源", "半导体", "白酒消费", "高端制造"), "股票", 10.0),
    ("指数", 30, (3, 4), ("沪深300", "中证500", "创业板", "科创50", "红利低波"), "指数", 10.0),
    ("QDII", 14, (4, 5), ("纳斯达克100", "标普500", "恒生科技", "全球医疗"), "QDII", 100.0),
    ("FOF", 14, (2, 3), ("养老目标2035", "稳健养老", "积极配置", "平衡养老"), "FOF", 100.0),
)

STOCKS: tuple[tuple[str, str, str], ...] = (
    ("600519", "贵州茅台", "食品饮料"),
    ("000858", "五粮液", "食品饮料"),
    ("601318", "中国平安", "非银金融"),
    ("600036", "招商银行", "银行"),
    ("000333", "美的集团", "家用电器"),
    ("300750", "宁德时代", "电力设备"),
    ("002594", "比亚迪", "汽车"),
    ("601012", "隆基绿能", "电力设备"),
    ("600276", "恒瑞医药", "医药生物"),
    ("000001", "平安银行", "银行"),
    ("600030", "中信证券", "非银金融"),
    ("601888", "中国中免", "商贸零售"),
    ("600900", "长江电力", "公用事业"),
    ("000651", "格力电器", "家用电器"),
    ("002415", "海康威视", "计算机"),
    ("300059", "东方财富", "非银金融"),
    ("601398", "工商银行", "银行"),
    ("600887", "伊利股份", "食品饮料"),
    ("688981", "中芯国际", "电子"),
    ("300760", "迈瑞医疗", "医药生物"),
)

#: (code, name, category, risk level) of bonds sold over the counter / on exchange.
BONDS: tuple[tuple[str, str, str, str], ...] = (
    ("019733", "24国债01", "国债", "R1"),
    ("019740", "24国债08", "国债", "R1"),
    ("138888", "23招商证券债01", "公司债", "R2"),
    ("185123", "22中铁建债02", "公司债", "R2"),
    ("113052", "兴业转债", "可转债", "R3"),
    ("127045", "牧原转债", "可转债", "R3"),
)

#: (item_id, name, risk level) of services sold as items (两融 is the margin-trading service).
SERVICES: tuple[tuple[str, str, str], ...] = (
    ("margin_trading", "融资融券", "R4"),
    ("investment_advisory", "基金投顾", "R3"),
    ("ipo_subscription", "新股申购提醒", "R4"),
)

ARTICLES: tuple[tuple[str, str, str], ...] = (
    ("A001", "基金定投入门：为什么要长期坚持", "定投"),
    ("A002", "两融业务规则与风险揭示", "两融"),
    ("A003", "债券基金如何挑选", "债券"),
    ("A004", "指数基金的三种用法", "指数"),
    ("A005", "风险测评到期怎么办", "适当性"),
    ("A006", "新能源行业季度观察", "行业"),
    ("A007", "养老目标基金知多少", "养老"),
    ("A008", "科创板开户条件解读", "开户"),
)

APP_SCREENS: tuple[tuple[str, float], ...] = (
    ("首页", 0.28),
    ("行情", 0.22),
    ("自选股", 0.14),
    ("基金超市", 0.12),
    ("资产", 0.10),
    ("交易", 0.08),
    ("我的", 0.06),
)

WEB_PAGES: tuple[tuple[str, float], ...] = (
    ("https://www.flywheel-sec.example/", 0.35),
    ("https://www.flywheel-sec.example/funds", 0.20),
    ("https://www.flywheel-sec.example/market", 0.18),
    ("https://www.flywheel-sec.example/news", 0.12),
    ("https://www.flywheel-sec.example/open-account", 0.08),
    ("https://www.flywheel-sec.example/margin", 0.07),
)

SEARCH_KEYWORDS: tuple[str, ...] = (
    "白酒",
    "新能源",
    "医药",
    "半导体",
    "债券基金",
    "货币基金",
    "定投",
    "沪深300",
    "纳斯达克",
    "两融",
    "科创板",
    "红利",
    "养老",
    "茅台",
    "宁德时代",
    "基金经理",
)

OS_CHOICES: tuple[tuple[str, float], ...] = (("iOS", 0.45), ("Android", 0.50), ("HarmonyOS", 0.05))
MODELS: dict[str, tuple[str, ...]] = {
    "iOS": ("iPhone15,2", "iPhone14,5", "iPhone16,1", "iPhone13,2"),
    "Android": ("Xiaomi 14", "OPPO Find X7", "vivo X100", "Redmi K70", "OnePlus 12"),
    "HarmonyOS": ("HUAWEI Mate 60", "HUAWEI P60", "HUAWEI nova 12"),
}
APP_VERSIONS: tuple[tuple[str, float], ...] = (("8.4.0", 0.55), ("8.3.1", 0.30), ("8.2.0", 0.15))
LOGIN_METHODS: tuple[tuple[str, float], ...] = (
    ("password", 0.35),
    ("sms", 0.25),
    ("fingerprint", 0.25),
    ("face", 0.15),
)
WECHAT_ACCOUNTS: tuple[str, ...] = ("飞轮证券", "飞轮证券财富")
AUTO_INVEST_PERIODS: tuple[tuple[str, int, float], ...] = (
    ("weekly", 7, 0.25),
    ("biweekly", 14, 0.15),
    ("monthly", 30, 0.60),
)
PAYMENT_FAILURES: tuple[tuple[str, float], ...] = (
    ("余额不足", 0.80),
    ("银行卡单日限额", 0.15),
    ("账户状态异常", 0.05),
)
TERMINATE_REASONS: tuple[tuple[str, float], ...] = (
    ("用户主动终止", 0.6),
    ("连续扣款失败", 0.3),
    ("更换基金", 0.1),
)
