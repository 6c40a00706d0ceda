"""Places the generator puts people in: real Chinese divisions and US cities.

The Chinese rows carry the GB/T 2260 division code that resident IDs start with, so an
ID's first six digits name a real district. Postal codes are each district's usual one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CnDistrict:
    """A county-level division of China with its GB/T 2260 code and a postal code."""

    province: str
    city: str
    district: str
    division: str
    postal_code: str


@dataclass(frozen=True, slots=True)
class UsCity:
    """A US city with its state, a ZIP code and a telephone area code."""

    city: str
    state: str
    zip_code: str
    area_code: str


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


CN_DISTRICTS: tuple[CnDistrict, ...] = tuple(
    CnDistrict(*row)
    for row in (
        ("北京市", "北京市", "朝阳区", "110105", "100020"),
        ("北京市", "北京市", "海淀区", "110108", "100080"),
        ("上海市", "上海市", "浦东新区", "310115", "200120"),
        ("上海市", "上海市", "徐汇区", "310104", "200030"),
        ("天津市", "天津市", "和平区", "120101", "300041"),
        ("重庆市", "重庆市", "渝中区", "500103", "400010"),
        ("广东省", "广州市", "天河区", "440106", "510630"),
        ("广东省", "深圳市", "南山区", "440305", "518052"),
        ("浙江省", "杭州市", "西湖区", "330106", "310013"),
        ("江苏省", "南京市", "玄武区", "320102", "210018"),
        ("江苏省", "苏州市", "姑苏区", "320508", "215000"),
        ("四川省", "成都市", "武侯区", "510107", "610041"),
        ("湖北省", "武汉市", "武昌区", "420106", "430061"),
        ("陕西省", "西安市", "雁塔区", "610113", "710061"),
        ("山东省", "济南市", "历下区", "370102", "250011"),
        ("山东省", "青岛市", "市南区", "370202", "266001"),
        ("福建省", "厦门市", "思明区", "350203", "361001"),
        ("辽宁省", "沈阳市", "和平区", "210102", "110001"),
        ("黑龙江省", "哈尔滨市", "南岗区", "230103", "150001"),
        ("湖南省", "长沙市", "岳麓区", "430104", "410006"),
        ("河南省", "郑州市", "金水区", "410105", "450003"),
        ("云南省", "昆明市", "五华区", "530102", "650031"),
        ("广西壮族自治区", "南宁市", "青秀区", "450103", "530022"),
        ("安徽省", "合肥市", "蜀山区", "340104", "230031"),
        ("河北省", "石家庄市", "长安区", "130102", "050011"),
        ("江西省", "南昌市", "东湖区", "360102", "330006"),
        ("吉林省", "长春市", "朝阳区", "220104", "130012"),
        ("山西省", "太原市", "小店区", "140105", "030032"),
        ("贵州省", "贵阳市", "南明区", "520102", "550001"),
        ("甘肃省", "兰州市", "城关区", "620102", "730030"),
    )
)

US_CITIES: tuple[UsCity, ...] = tuple(
    UsCity(*row)
    for row in (
        ("Boston", "MA", "02115", "617"),
        ("Springfield", "IL", "62701", "217"),
        ("Columbus", "OH", "43215", "614"),
        ("Austin", "TX", "78701", "512"),
        ("Denver", "CO", "80202", "303"),
        ("Portland", "OR", "97205", "503"),
        ("Madison", "WI", "53703", "608"),
        ("Raleigh", "NC", "27601", "919"),
        ("Phoenix", "AZ", "85004", "602"),
        ("Nashville", "TN", "37203", "615"),
        ("Sacramento", "CA", "95814", "916"),
        ("Richmond", "VA", "23219", "804"),
        ("Minneapolis", "MN", "55401", "612"),
        ("Albany", "NY", "12207", "518"),
        ("Salt Lake City", "UT", "84101", "801"),
        ("Atlanta", "GA", "30303", "404"),
        ("Omaha", "NE", "68102", "402"),
        ("Pittsburgh", "PA", "15213", "412"),
        ("Baltimore", "MD", "21201", "410"),
        ("Seattle", "WA", "98101", "206"),
    )
)

#: Common Chinese street names; Faker's zh_CN street names are mixed in at run time.
CN_STREETS: tuple[str, ...] = _words(
    "人民路 解放路 中山路 建设路 和平路 文化路 新华路 长江路 黄河路 朝阳路 胜利路 光明路 "
    "青年路 东风路 建国路 北京路 南京路 复兴路 健康路 学府路 科技路 滨江路 湖滨路 花园路 "
    "幸福路 迎宾大道 世纪大道 工业大道 金桥路 翠园街 桂花巷 梧桐街"
)

#: Mobile number prefixes in use in mainland China.
CN_MOBILE_PREFIXES: tuple[str, ...] = _words(
    "130 131 132 133 135 136 137 138 139 150 151 152 155 156 157 158 159 166 173 176 177 "
    "180 181 182 183 185 186 187 188 189 191 198 199"
)

CN_EMAIL_DOMAINS: tuple[str, ...] = ("qq.com", "163.com", "126.com", "sina.com", "foxmail.com")
US_EMAIL_DOMAINS: tuple[str, ...] = ("gmail.com", "yahoo.com", "outlook.com", "aol.com")

#: Words for invented hospital names (never a real hospital's full name on purpose).
CN_HOSPITAL_WORDS: tuple[str, ...] = _words("安康 康宁 惠民 永安 瑞华 博济 仁和 明德")
US_HOSPITAL_WORDS: tuple[str, ...] = (
    "Riverside",
    "Lakeview",
    "Northgate",
    "Cedar Ridge",
    "Summit",
    "Mercy Vale",
    "Harbor",
)
