"""Deterministic, made-up news text for the benchmark corpus: titles, summaries, paragraphs.

Everything is composed from the small vocabularies below with a seeded ``random.Random``, so a
corpus is the same on every machine and no third-party text is copied into the repository. A
share of the articles is about EU-NATO defence (written to meet ``config/topics.toml``), the rest
about other news, so the topic filter has real work and a known expected share of matches.
"""

from __future__ import annotations

import random

COUNTRIES = (
    "Poland", "Germany", "France", "Estonia", "Latvia", "Lithuania", "Finland", "Sweden",
    "Romania", "the Netherlands", "Denmark", "Norway", "Italy", "Spain", "Czechia", "Slovakia",
)  # fmt: skip
CITIES = (
    "Warsaw", "Berlin", "Paris", "Tallinn", "Riga", "Vilnius", "Helsinki", "Stockholm",
    "Bucharest", "The Hague", "Copenhagen", "Oslo", "Rome", "Madrid", "Prague", "Bratislava",
)  # fmt: skip
PEOPLE = (
    "Anna Kowalczyk", "Jonas Berg", "Marie Lefevre", "Tomas Varga", "Elena Petrescu",
    "Lars Holm", "Sofia Marin", "Pieter de Vries", "Katrin Vogel", "Miguel Ortega",
    "Ingrid Dahl", "Paolo Russo", "Agnieszka Nowak", "Henrik Laine", "Clara Novak",
)  # fmt: skip

DEFENCE_TITLES = (
    "NATO allies agree to raise defence spending as {country} pushes for faster deliveries",
    "EU defence ministers back joint air defence purchase for the eastern flank",
    "{country} signs contract for new howitzers under European defence industry plan",
    "NATO steps up air policing over the Baltic after airspace violation near {city}",
    "European Commission proposes defence fund to rearm Europe by 2030",
    "{country} to host NATO rapid reaction force exercise near {city}",
    "EU and NATO discuss protection of undersea cables after sabotage suspicion",
    "Defence ministers meet in {city} to coordinate military aid to Ukraine",
)  # fmt: skip
OTHER_TITLES = (
    "{city} council approves new tram line after years of debate",
    "Storm brings heavy rain and flooding to the coast near {city}",
    "{country} central bank holds interest rates as inflation cools",
    "Local side wins derby in {city} with late penalty",
    "New museum of modern design opens its doors in {city}",
    "Farmers in {country} warn of poor harvest after dry summer",
    "Tech start-up from {city} raises funding for battery recycling",
    "Film festival in {city} announces this year's jury",
    "Rail strike disrupts commuter services across {country}",
    "Hospital in {city} trials shorter waiting lists for patients",
)  # fmt: skip

DEFENCE_SENTENCES = (
    "NATO defence ministers agreed in {city} to strengthen the eastern flank with additional air "
    "defence systems.",
    "{person}, a senior official at the European Defence Agency, said the European defence "
    "industry must double its output of artillery shells.",
    "The European Union will fund joint procurement of air and missile defence through its new "
    "defence programme.",
    "{country} plans to raise its defence budget to three percent of economic output next year.",
    "Allies discussed collective defence under Article 5 and the deployment of troops along the "
    "border.",
    "The alliance scrambled fighter jets after a Russian aircraft violated airspace near {city}.",
    "Officials in Brussels said military aid to Ukraine would continue through the winter.",
    "The armed forces of {country} will take part in a NATO exercise testing rapid reinforcement.",
    "European defence ministers called for common standards so that ammunition can be shared.",
    "Investigators suspect sabotage after damage to undersea cables in the Baltic Sea.",
    "The drone wall along the eastern border is meant to detect incursions within seconds.",
    "{person} told reporters that deterrence depends on credible forces and stockpiles.",
    "The European Commission wants member states to buy weapons together to cut costs.",
    "NATO's secretary general urged allies to meet their defence spending pledges.",
)  # fmt: skip
OTHER_SENTENCES = (
    "The city council voted by a narrow margin after a long debate on the budget.",
    "Residents in {city} said the new service would make their daily commute much easier.",
    "Economists expect growth in {country} to pick up slowly in the second half of the year.",
    "The coach praised his players for their patience during a difficult first half.",
    "Ticket sales for the festival have already passed last year's record.",
    "{person} said the museum would offer free entry to students on weekdays.",
    "Farmers said the lack of rain had cut yields of wheat and barley across the region.",
    "The company plans to hire more engineers and open a second site near {city}.",
    "Unions said the strike would continue unless the offer on wages improved.",
    "Doctors at the hospital said shorter waiting lists would depend on more nurses.",
    "The weather service warned of strong winds and heavy rain along the coast.",
    "Shoppers in {city} have cut spending on clothes and eating out this year.",
    "The new tram line is expected to carry about forty thousand passengers a day.",
    "Critics said the plan did little to address the shortage of affordable housing.",
    "{person} said the results were encouraging but that more work was needed.",
)  # fmt: skip
COMMENTS = (
    "Great article, thanks for the detailed reporting.",
    "I don't agree with this at all, the numbers don't add up.",
    "Finally some good news for once.",
    "Who is going to pay for all of this in the end?",
    "This has been going on for years and nothing changes.",
    "Interesting read, but the headline is misleading.",
    "Can someone explain what this means for ordinary people?",
    "Well written, I shared it with my colleagues.",
)  # fmt: skip
SECTIONS = (
    "World", "Europe", "Politics", "Business", "Economy", "Defence", "Security", "Science",
    "Technology", "Climate", "Culture", "Sport", "Travel", "Health", "Opinion", "Video",
)  # fmt: skip


def fill(rng: random.Random, template: str) -> str:
    """Fill ``{country}``, ``{city}`` and ``{person}`` slots with seeded choices."""
    return template.format(
        country=rng.choice(COUNTRIES), city=rng.choice(CITIES), person=rng.choice(PEOPLE)
    )


def title(rng: random.Random, relevant: bool) -> str:
    t = fill(rng, rng.choice(DEFENCE_TITLES if relevant else OTHER_TITLES))
    return t[0].upper() + t[1:]


def sentence(rng: random.Random, relevant: bool) -> str:
    """A defence sentence in about half the sentences of a relevant article, else other news."""
    pool = DEFENCE_SENTENCES if relevant and rng.random() < 0.5 else OTHER_SENTENCES
    s = fill(rng, rng.choice(pool))
    return s[0].upper() + s[1:]


def paragraphs(rng: random.Random, relevant: bool, words: int) -> list[str]:
    """Paragraphs of 2-6 sentences until about ``words`` words are written."""
    out: list[str] = []
    total = 0
    while total < words:
        para = " ".join(sentence(rng, relevant) for _ in range(rng.randint(2, 6)))
        out.append(para)
        total += len(para.split())
    return out


def comment(rng: random.Random) -> str:
    return " ".join(rng.choice(COMMENTS) for _ in range(rng.randint(1, 3)))


__all__ = ["CITIES", "COUNTRIES", "PEOPLE", "SECTIONS", "comment", "paragraphs", "title"]
