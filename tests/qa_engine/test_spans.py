"""Answer spans end on whole words, numbers and units, with balanced brackets (en, fr, ja, zh)."""

import pytest

from qa_engine.spans import whole_span


def widened(text: str, cut: str) -> str:
    """The answer Kate gives when the model's span is `cut` (its first occurrence in `text`)."""
    start = text.index(cut)
    s, e = whole_span(text, start, start + len(cut))
    return text[s:e]


@pytest.mark.parametrize(
    ("text", "cut", "answer"),
    [
        # ja: counters stay with their number
        ("賞与は年2回、6月と12月に支給されます。", "6月と12", "6月と12月"),
        ("給与は毎月25日に指定の銀行口座へ振り込まれます。", "25", "25日"),
        ("賞与は年2回、6月と12月に支給されます。", "年2", "年2回"),
        ("通勤手当は月額5万円を上限として実費を支給します。", "5万", "5万円"),
        ("日本法人の試用期間は3か月です。", "3", "3か月"),
        ("宿泊費は1泊45,000円までです。", "45", "45,000円"),
        ("給与明細はワークデイで確認できます。", "ワーク", "ワークデイ"),
        ("給与は毎月25日に指定の銀行口座へ振り込まれます。", "25日に", "25日"),  # a particle glued on
        ("賞与は年2回、6月と12月に支給されます。", "6月と12月に", "6月と12月"),
        ("給与明細はWorkdayで確認できます。", "Workdayで", "Workday"),
        ("私はすしをたべます。", "たべます", "たべます"),  # hiragana words keep their endings
        # zh
        ("北京大学成立于1898年，是中国第一所国立综合性大学。", "1898", "1898年"),
        ("深圳的人口约为1300万人。", "1300", "1300万人"),
        ("会费为每年200元。", "200", "200元"),
        # en: words, numbers, currencies, e-mail addresses, brackets
        (
            "For corrections, write to people@northwind.example.",
            "people@northwind",
            "people@northwind.example",
        ),
        ("Every employee has a training budget of 1,500 euros per year.", "1", "1,500"),
        ("Private car: 0.30 euros per kilometre", "0.3", "0.30"),
        ("A hotel night in London costs up to £125 with breakfast.", "125", "£125"),
        ("The allowance is US$100 a month.", "100", "US$100"),
        (
            "Phone: extension 4357 (HELP), from 8:00 to 19:00.",
            "extension 4357 (HELP",
            "extension 4357 (HELP)",
        ),
        ("Phone: extension 4357 (HELP), from 8:00 to 19:00.", "HELP)", "(HELP)"),
        ("Leave requests go through Workday.", "Work", "Workday"),
        ("The trial period lasts three months, then it ends.", "three months,", "three months"),
        ("Claims approved before the 15th are paid.", "15", "15th"),
        # fr: thin spaces and percent signs, euros after the number, apostrophes
        ("Northwind prend en charge 60 % de la cotisation.", "60", "60 %"),
        ("Une indemnité de 30 € par mois est versée.", "30", "30 €"),
        ("Le forfait est de 700 euros par an.", "70", "700"),
        ("C'est versé aujourd'hui même.", "aujourd", "aujourd'hui"),
        ("versé en deux fois (en juin et\nen décembre)", "deux fois (en juin", "deux fois"),
        ("les trois types de roches:ignees, sedimentaires", "ignees", "ignees"),  # a colon is no joiner
        ("L'accueil ouvre à 8:30 le lundi.", "8:3", "8:30"),  # but a clock time is one token
    ],
)
def test_spans_end_on_whole_units(text, cut, answer):
    assert widened(text, cut) == answer


def test_whole_spans_are_left_alone_and_never_cross_lines():
    text = "Annual leave\n25 days of paid annual leave.\nSick leave"
    for cut in ("25 days", "paid annual leave", "Annual leave", "Sick leave"):
        assert widened(text, cut) == cut
    assert whole_span("", 0, 0) == (0, 0)
    assert whole_span("abc", 2, 2) == (2, 2)


def test_widening_is_bounded():
    word = "x" * 500
    s, e = whole_span(word, 250, 251)
    assert e - s <= 81  # at most 40 characters more on each side, however long the "word"
