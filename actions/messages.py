"""What the action server says to employees, in English, French, Japanese, German and Spanish.

Scripted HR answers are the company's content (knowledge/scripted.py, edited in the admin console);
these are the sentences the custom actions build around them, intranet answers and votes. Every
language has every key (tests check it), and an unknown language falls back to English.
"""

from __future__ import annotations

LANGUAGES = ("en", "fr", "ja", "de", "es")

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "conflict": "Careful: another page says something different. Please check both pages, or ask HR:",
        "more_items": "…and {count} more on the page.",
        "outdated": "(from a section the page marks as outdated)",
        "verified": "Confirmed by HR.",
        "offer_hr": "Would you like to ask a person in HR?",
        "contact_button": "Contact HR",
        "contact_intro": "You can reach HR here:",
        "contact_mail": "Mail: {link} (your question is in the mail)",
        "contact_ticket": "Ticket: {link}",
        "contact_phone": "Phone: {phone}",
        "no_contact": "I have no HR contact to give you yet. Please ask your manager who to contact.",
        "other_language": "HR wrote this answer in {name} only:",
        "language_en": "English",
        "language_fr": "French",
        "language_ja": "Japanese",
        "language_de": "German",
        "language_es": "Spanish",
        "source": "Source: {link}",
        "unsure": "I could not find a confident answer on the intranet.",
        "no_other": "I have no other answer from a different page.",
        "pages_help": "These pages may help:",
        "another": "Here is another answer, from a different page:",
        "sources_down": "I cannot read the intranet pages right now. Please try again in a few minutes, "
        "or contact HR directly.",
        "too_slow": "The intranet is too slow to answer right now. Please try again in a moment.",
        "reader_down": "My reading service is unavailable right now, so I cannot search the intranet. "
        "Please try again in a few minutes, or contact HR directly.",
        "off_topic": "That is outside what I know: I answer questions about HR, leave, pay and life at "
        "work, from your company's pages.",
        "empty": "Your message was empty. What would you like to know about HR?",
        "too_long": "Your message is too long for me ({length} characters). Please ask one question "
        "in at most {limit} characters.",
        "thanks_up": "Thanks for your feedback! 👍",
        "thanks_down": "Thanks for telling me. Let me try again.",
        "nothing_to_rate": "There is no answer to rate yet. Ask me a question first!",
        "vote_lost": "Sorry, I could not record your vote right now. Please try again later.",
        "internal_error": "Sorry, something went wrong on my side while answering. Please try again, "
        "or contact HR directly.",
    },
    "fr": {
        "conflict": "Attention : une autre page dit autre chose. Vérifiez les deux pages ou demandez "
        "aux RH :",
        "more_items": "…et {count} autres sur la page.",
        "outdated": "(tiré d'une section que la page indique comme obsolète)",
        "verified": "Réponse confirmée par les RH.",
        "offer_hr": "Voulez-vous poser la question à une personne des RH ?",
        "contact_button": "Contacter les RH",
        "contact_intro": "Vous pouvez joindre les RH ici :",
        "contact_mail": "Mail : {link} (votre question est dans le message)",
        "contact_ticket": "Demande : {link}",
        "contact_phone": "Téléphone : {phone}",
        "no_contact": "Je n'ai pas encore de contact RH à vous donner. Demandez à votre manager qui "
        "contacter.",
        "other_language": "Les RH n'ont écrit cette réponse qu'en {name} :",
        "language_en": "anglais",
        "language_fr": "français",
        "language_ja": "japonais",
        "language_de": "allemand",
        "language_es": "espagnol",
        "source": "Source : {link}",
        "unsure": "Je n'ai pas trouvé de réponse fiable sur l'intranet.",
        "no_other": "Je n'ai pas d'autre réponse tirée d'une autre page.",
        "pages_help": "Ces pages peuvent vous aider :",
        "another": "Voici une autre réponse, tirée d'une autre page :",
        "sources_down": "Je ne peux pas lire les pages de l'intranet pour le moment. Réessayez dans quelques "
        "minutes ou contactez directement les RH.",
        "too_slow": "L'intranet est trop lent pour répondre en ce moment. Réessayez dans un instant.",
        "reader_down": "Mon service de lecture est indisponible pour le moment : je ne peux pas chercher "
        "dans l'intranet. Réessayez dans quelques minutes ou contactez directement les RH.",
        "off_topic": "Cela dépasse ce que je sais : je réponds aux questions RH, congés, paie et vie au "
        "travail, à partir des pages de votre entreprise.",
        "empty": "Votre message est vide. Que voulez-vous savoir sur les RH ?",
        "too_long": "Votre message est trop long pour moi ({length} caractères). Posez une seule question "
        "en {limit} caractères au plus.",
        "thanks_up": "Merci pour votre retour ! 👍",
        "thanks_down": "Merci de me l'avoir signalé. Je réessaie.",
        "nothing_to_rate": "Il n'y a pas encore de réponse à évaluer. Posez-moi d'abord une question !",
        "vote_lost": "Désolée, je n'ai pas pu enregistrer votre vote. Réessayez plus tard.",
        "internal_error": "Désolée, un problème est survenu de mon côté pendant la réponse. Réessayez, "
        "ou contactez directement les RH.",
    },
    "ja": {
        "conflict": "ご注意：別のページには異なる内容が書かれています。"
        "両方のページを確認するか、人事に確認してください：",
        "more_items": "…ほか{count}件はページをご覧ください。",
        "outdated": "（ページ上で古い情報とされているセクションからの回答です）",
        "verified": "人事部が確認済みの回答です。",
        "offer_hr": "人事の担当者に質問しますか？",
        "contact_button": "人事に問い合わせる",
        "contact_intro": "人事への連絡先：",
        "contact_mail": "メール：{link}（ご質問はメールに記載済みです）",
        "contact_ticket": "問い合わせフォーム：{link}",
        "contact_phone": "電話：{phone}",
        "no_contact": "人事の連絡先がまだ登録されていません。上長に連絡先を確認してください。",
        "other_language": "この回答は人事により{name}でのみ書かれています：",
        "language_en": "英語",
        "language_fr": "フランス語",
        "language_ja": "日本語",
        "language_de": "ドイツ語",
        "language_es": "スペイン語",
        "source": "出典：{link}",
        "unsure": "イントラネットで確かな回答が見つかりませんでした。",
        "no_other": "別のページからの回答はありません。",
        "pages_help": "次のページが参考になるかもしれません：",
        "another": "別のページからの回答です：",
        "sources_down": "現在イントラネットのページを読み込めません。数分後にもう一度お試しいただくか、"
        "人事部に直接お問い合わせください。",
        "too_slow": "イントラネットの応答が遅いため、今は回答できません。少し後でもう一度お試しください。",
        "reader_down": "現在、読み取りサービスが利用できないため、イントラネットを検索できません。"
        "数分後にもう一度お試しいただくか、人事部に直接お問い合わせください。",
        "off_topic": "申し訳ありませんが、人事・休暇・給与など社内のことについて、"
        "会社のページをもとにお答えしています。",
        "empty": "メッセージが空です。人事について何を知りたいですか？",
        "too_long": "メッセージが長すぎます（{length}文字）。質問は{limit}文字以内で一つずつお願いします。",
        "thanks_up": "フィードバックありがとうございます！👍",
        "thanks_down": "お知らせいただきありがとうございます。もう一度探してみます。",
        "nothing_to_rate": "まだ評価できる回答がありません。まず質問してください！",
        "vote_lost": "申し訳ありません。評価を記録できませんでした。後でもう一度お試しください。",
        "internal_error": "申し訳ありません。回答中にこちら側で問題が発生しました。もう一度お試しいただくか、"
        "人事部に直接お問い合わせください。",
    },
    "de": {
        "conflict": "Achtung: Eine andere Seite sagt etwas anderes. Bitte prüfen Sie beide Seiten "
        "oder fragen Sie HR:",
        "more_items": "…und {count} weitere auf der Seite.",
        "outdated": "(aus einem Abschnitt, den die Seite als veraltet kennzeichnet)",
        "verified": "Von HR bestätigt.",
        "offer_hr": "Möchten Sie jemanden aus HR fragen?",
        "contact_button": "HR kontaktieren",
        "contact_intro": "So erreichen Sie HR:",
        "contact_mail": "E-Mail: {link} (Ihre Frage steht in der E-Mail)",
        "contact_ticket": "Ticket: {link}",
        "contact_phone": "Telefon: {phone}",
        "no_contact": "Ich habe noch keinen HR-Kontakt für Sie. Bitte fragen Sie Ihre Führungskraft, "
        "an wen Sie sich wenden können.",
        "other_language": "HR hat diese Antwort nur auf {name} geschrieben:",
        "language_en": "Englisch",
        "language_fr": "Französisch",
        "language_ja": "Japanisch",
        "language_de": "Deutsch",
        "language_es": "Spanisch",
        "source": "Quelle: {link}",
        "unsure": "Ich habe im Intranet keine sichere Antwort gefunden.",
        "no_other": "Ich habe keine andere Antwort von einer anderen Seite.",
        "pages_help": "Diese Seiten könnten helfen:",
        "another": "Hier ist eine andere Antwort, von einer anderen Seite:",
        "sources_down": "Ich kann die Intranetseiten gerade nicht lesen. Bitte versuchen Sie es in ein paar "
        "Minuten erneut oder wenden Sie sich direkt an HR.",
        "too_slow": "Das Intranet ist gerade zu langsam, um zu antworten. Bitte versuchen Sie es gleich noch "
        "einmal.",
        "reader_down": "Mein Lesedienst ist gerade nicht verfügbar, daher kann ich das Intranet nicht "
        "durchsuchen. Bitte versuchen Sie es in ein paar Minuten erneut oder wenden Sie sich direkt an HR.",
        "off_topic": "Das liegt außerhalb dessen, was ich weiß: Ich beantworte Fragen zu HR, Urlaub, Gehalt "
        "und Arbeitsalltag anhand der Seiten Ihres Unternehmens.",
        "empty": "Ihre Nachricht war leer. Was möchten Sie über HR wissen?",
        "too_long": "Ihre Nachricht ist zu lang für mich ({length} Zeichen). Bitte stellen Sie eine "
        "Frage mit höchstens {limit} Zeichen.",
        "thanks_up": "Danke für Ihr Feedback! 👍",
        "thanks_down": "Danke für den Hinweis. Ich versuche es noch einmal.",
        "nothing_to_rate": "Es gibt noch keine Antwort zu bewerten. Stellen Sie mir zuerst eine Frage!",
        "vote_lost": "Entschuldigung, ich konnte Ihre Bewertung gerade nicht speichern. Bitte versuchen "
        "Sie es später erneut.",
        "internal_error": "Entschuldigung, bei mir ist beim Antworten etwas schiefgelaufen. Bitte "
        "versuchen Sie es erneut oder wenden Sie sich direkt an HR.",
    },
    "es": {
        "conflict": "Atención: otra página dice algo distinto. Revise las dos páginas o pregunte a RR. HH.:",
        "more_items": "…y {count} más en la página.",
        "outdated": "(de una sección que la página marca como desactualizada)",
        "verified": "Confirmado por RR. HH.",
        "offer_hr": "¿Quiere preguntar a una persona de RR. HH.?",
        "contact_button": "Contactar con RR. HH.",
        "contact_intro": "Puede contactar con RR. HH. aquí:",
        "contact_mail": "Correo: {link} (su pregunta va en el correo)",
        "contact_ticket": "Solicitud: {link}",
        "contact_phone": "Teléfono: {phone}",
        "no_contact": "Todavía no tengo un contacto de RR. HH. que darle. Pregunte a su responsable a quién "
        "dirigirse.",
        "other_language": "RR. HH. escribió esta respuesta solo en {name}:",
        "language_en": "inglés",
        "language_fr": "francés",
        "language_ja": "japonés",
        "language_de": "alemán",
        "language_es": "español",
        "source": "Fuente: {link}",
        "unsure": "No he encontrado una respuesta fiable en la intranet.",
        "no_other": "No tengo otra respuesta de una página distinta.",
        "pages_help": "Estas páginas pueden ayudarle:",
        "another": "Aquí tiene otra respuesta, de otra página:",
        "sources_down": "Ahora mismo no puedo leer las páginas de la intranet. Inténtelo de nuevo en unos "
        "minutos o contacte directamente con RR. HH.",
        "too_slow": "La intranet va demasiado lenta para responder ahora. Inténtelo de nuevo en un momento.",
        "reader_down": "Mi servicio de lectura no está disponible ahora, así que no puedo buscar en la "
        "intranet. Inténtelo de nuevo en unos minutos o contacte directamente con RR. HH.",
        "off_topic": "Eso queda fuera de lo que sé: respondo a preguntas sobre RR. HH., vacaciones, nómina "
        "y la vida en el trabajo, a partir de las páginas de su empresa.",
        "empty": "Su mensaje estaba vacío. ¿Qué quiere saber sobre RR. HH.?",
        "too_long": "Su mensaje es demasiado largo para mí ({length} caracteres). Haga una sola pregunta de "
        "{limit} caracteres como máximo.",
        "thanks_up": "¡Gracias por su opinión! 👍",
        "thanks_down": "Gracias por decírmelo. Lo intento de nuevo.",
        "nothing_to_rate": "Todavía no hay ninguna respuesta que valorar. ¡Hágame primero una pregunta!",
        "vote_lost": "Lo siento, no he podido registrar su valoración ahora. Inténtelo de nuevo más tarde.",
        "internal_error": "Lo siento, algo ha fallado por mi parte al responder. Inténtelo de nuevo o "
        "contacte directamente con RR. HH.",
    },
}


def language_of(value: object) -> str:
    """One of LANGUAGES: the given code when Kate knows it, else English."""
    return value if isinstance(value, str) and value in TEXTS else "en"


def say(key: str, language: str, **values: object) -> str:
    return TEXTS[language_of(language)][key].format(**values)


def markdown_link(title: str, url: str) -> str:
    """A Markdown link whose text cannot break out of the brackets, to an http(s) or mailto: address
    only (titles come from intranet pages, which Kate does not control)."""
    clean = " ".join(title.replace("[", "(").replace("]", ")").split()) or url
    if not url.startswith(("http://", "https://", "mailto:")):
        return clean
    safe_url = url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
    return f"[{clean}]({safe_url})"


def inert(text: str) -> str:
    """Page text shown as it is, but unable to form a Markdown link (`[x](javascript:...)`) of its own."""
    return text.replace("](", "] (")


def bold(text: str, part: str) -> str:
    """`text` with the first occurrence of `part` in **bold** (the widget's Markdown subset)."""
    at = text.find(part) if part.strip() else -1
    if at < 0:
        return text
    return f"{text[:at]}**{part}**{text[at + len(part) :]}"


def link_list(pages: list[tuple[str, str]]) -> str:
    return "\n".join(f"- {markdown_link(title, url)}" for title, url in pages)


def language_name(code: str, language: str) -> str:
    """The name of language `code` in `language` ("anglais"), or the code itself when Kate has none."""
    return TEXTS[language_of(language)].get(f"language_{code}", code)
