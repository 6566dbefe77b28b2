"""Realistic synthetic traces: seeded, vectorised, with injectable drift and regressions.

:func:`generate` returns a canonical frame (:data:`llmobs_cli.core.record.schema.SCHEMA`) of
``rows`` **sampled** rows, i.e. the rows a storage sampler kept. Each route logs its
storage ``sample_rate`` per row; the per-route row shares are chosen so that the implied
population (``Σ 1/sample_rate`` per route) follows a Zipf law with ``chat`` the largest:

========== ================ =========== =============================================
route      sample_rate      population  what it is
========== ================ =========== =============================================
chat       0.01             Zipf rank 1 general assistant, multi-turn sessions
search_qa  0.10             Zipf rank 2 help-centre RAG: ``retrieved`` docs, ``reference``
summarize  0.25             Zipf rank 3 meeting-notes summaries
support_…  0.50             Zipf rank 4 support agent (RAG, multi-turn)
refunds    1.00             Zipf rank 5 high-stakes refunds policy, ``reference``, ``cost_usd``
========== ================ =========== =============================================

Everything is numpy/Polars column work: text is assembled by vectorised choice of indices
into small pools of phrases (precomputed combinations, then ``gather`` + ``concat_str``);
lists (``retrieved``, ``messages``) are assembled from flat arrays and offsets. There is no
Python loop over rows, so a million rows take seconds.

Ground truth. ``metadata`` carries the generator's labels on every row: ``quality``
(``good``, ``wrong`` — a wrong fact/number against the reference, ``offtopic``,
``truncated``, ``refusal``, ``filtered`` — content filter, ``error``), ``lang`` (the language
the row was written in), ``topic``, plus ``tier`` and ``region``. Tests and stub judges may
score from the visible text or from this label.

Determinism. The same arguments give the same frame. Every random draw is made whatever
the options, from streams named by purpose, and drift/regression only *select* among them
by timestamp: rows before ``drift.after``/``regression.after`` are identical with and
without the injection (tested).

Drift (:class:`DriftSpec`) after ``after``: longer answers (and output tokens), more
refusals, another language mix, weaker retrieval scores, and (opt-in, ``topic_shift``) a
surge of one topic per route. Prompts are built from length-matched translations, and
their length does not depend on these drifts (except the opt-in topic surge, since topics
differ in length), so ``prompt_length`` does not move.

Regression (:class:`RegressionSpec`) after ``after`` on one route: every row there carries
the new ``release`` (its system prompt and a higher temperature changed) and a
``severity`` share of answers is wrong against the reference, off-topic or truncated
(``finish_reason`` ``length``).

Token conventions follow the contract: ``cached_tokens`` ⊆ ``input_tokens``;
``cache_write_tokens`` (Anthropic rows only) ⊆ ``input_tokens`` and disjoint from the cached
part; ``reasoning_tokens`` (``o3-mini``) ⊆ ``output_tokens``.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from llmobs_cli.core.record.schema import DOCUMENT, FIELDS, MESSAGE, SCHEMA
from llmobs_cli.errors import UsageError

__all__ = [
    "DEFAULT_DRIFT_LANGUAGE",
    "DEFAULT_START",
    "DRIFT_KINDS",
    "LANGUAGES",
    "QUALITY_LABELS",
    "ROUTES",
    "ROUTE_RATES",
    "DriftSpec",
    "RegressionSpec",
    "generate",
    "population_shares",
    "row_shares",
    "write_generated",
]

# --------------------------------------------------------------------------------------
# Public knobs
# --------------------------------------------------------------------------------------

#: Routes in Zipf rank order (population volume), with their storage sample rates.
ROUTES: tuple[str, ...] = ("chat", "search_qa", "summarize", "support_agent", "refunds")
ROUTE_RATES: dict[str, float] = {
    "chat": 0.01,
    "search_qa": 0.10,
    "summarize": 0.25,
    "support_agent": 0.50,
    "refunds": 1.00,
}
#: Zipf exponent of the population volume by route rank (rank 1 = chat).
ZIPF_EXPONENT = 2.0
#: Default start of the generated period (so that the default 42 days end on 2026-11-22).
DEFAULT_START = datetime(2026, 10, 12, tzinfo=UTC)
LANGUAGES: tuple[str, ...] = ("en", "es", "de", "fr")
BASE_LANGUAGE: dict[str, float] = {"en": 0.85, "es": 0.06, "de": 0.05, "fr": 0.04}
#: The language mix the CLI injects with ``--drift-after`` (``DriftSpec.language=None``
#: keeps the base mix).
DEFAULT_DRIFT_LANGUAGE: dict[str, float] = {"en": 0.60, "es": 0.25, "de": 0.10, "fr": 0.05}
DRIFT_KINDS: tuple[str, ...] = ("length", "refusals", "language", "retrieval", "topic")
QUALITY_LABELS: tuple[str, ...] = (
    "good",
    "wrong",
    "offtopic",
    "truncated",
    "refusal",
    "filtered",
    "error",
)


@dataclass
class DriftSpec:
    """Drift injected into rows whose ``timestamp`` is at or after ``after`` (UTC)."""

    after: datetime
    response_length: float = 1.3  # multiplier on response length and output tokens
    refusal_rate: float = 0.06  # absolute increase of the refusal probability
    language: dict[str, float] | None = None  # new language mix; None keeps the base mix
    retrieval_score: float = -0.15  # shift of every retrieval score (top-1 weaker)
    routes: list[str] | None = None  # None = all routes
    topic_shift: float = 0.0  # share of calls moved to each route's "hot" topic (0 = off)


@dataclass
class RegressionSpec:
    """A quality drop tied to a new release on one route, from ``after`` (UTC) on."""

    after: datetime
    route: str = "search_qa"
    release: str = "v2.0.0"
    severity: float = 0.35  # share of answers made wrong / off-topic / truncated


# --------------------------------------------------------------------------------------
# Text pools. Every pool is a parallel translation (en, es, de, fr) so that a language
# mix shift does not move prompt lengths; facts carry one number ({v}) that the wrong
# answer replaces.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Topic:
    name: str
    question: tuple[str, str, str, str]  # en, es, de, fr
    answer: tuple[str, str, str, str]  # with {v}
    value: str
    wrong: str


def _t(name: str, value: str, wrong: str, q: Sequence[str], a: Sequence[str]) -> _Topic:
    return _Topic(name, tuple(q), tuple(a), value, wrong)  # type: ignore[arg-type]


#: Help-centre knowledge base (search_qa and support_agent) of the fictional "Nimbus" app.
KB_TOPICS: tuple[_Topic, ...] = (
    _t(
        "password_reset",
        "30",
        "90",
        (
            "How long is the password reset link valid after I request it?",
            "¿Cuánto tiempo es válido el enlace para restablecer la contraseña?",
            "Wie lange ist der Link zum Zurücksetzen des Passworts gültig?",
            "Combien de temps le lien de réinitialisation du mot de passe est-il valable ?",
        ),
        (
            "The password reset link is valid for {v} minutes after you request it.",
            "El enlace para restablecer la contraseña es válido durante {v} minutos.",
            "Der Link zum Zurücksetzen des Passworts ist {v} Minuten lang gültig.",
            "Le lien de réinitialisation du mot de passe est valable pendant {v} minutes.",
        ),
    ),
    _t(
        "pro_storage",
        "500",
        "200",
        (
            "How much storage does each user get on the Pro plan?",
            "¿Cuánto almacenamiento tiene cada usuario en el plan Pro?",
            "Wie viel Speicherplatz bekommt jeder Nutzer im Pro-Tarif?",
            "Combien d'espace de stockage chaque utilisateur a-t-il avec l'offre Pro ?",
        ),
        (
            "The Pro plan includes {v} GB of storage for every user in the workspace.",
            "El plan Pro incluye {v} GB de almacenamiento para cada usuario del espacio.",
            "Der Pro-Tarif enthält {v} GB Speicherplatz für jeden Nutzer im Arbeitsbereich.",
            "L'offre Pro comprend {v} Go de stockage pour chaque utilisateur de l'espace.",
        ),
    ),
    _t(
        "pro_price",
        "12",
        "19",
        (
            "What does the Pro plan cost per user when we pay for a whole year?",
            "¿Cuánto cuesta el plan Pro por usuario si pagamos un año entero?",
            "Was kostet der Pro-Tarif pro Nutzer, wenn wir für ein ganzes Jahr zahlen?",
            "Combien coûte l'offre Pro par utilisateur si nous payons une année entière ?",
        ),
        (
            "The Pro plan costs {v} dollars per user per month when billed annually.",
            "El plan Pro cuesta {v} dólares por usuario al mes con facturación anual.",
            "Der Pro-Tarif kostet bei jährlicher Zahlung {v} Dollar pro Nutzer und Monat.",
            "L'offre Pro coûte {v} dollars par utilisateur et par mois en paiement annuel.",
        ),
    ),
    _t(
        "upload_limit",
        "5",
        "2",
        (
            "What is the largest file I can upload in one go?",
            "¿Cuál es el archivo más grande que puedo subir de una vez?",
            "Wie groß darf eine einzelne Datei beim Hochladen höchstens sein?",
            "Quelle est la taille maximale d'un fichier que je peux envoyer ?",
        ),
        (
            "The maximum size for a single file upload is {v} GB on every plan.",
            "El tamaño máximo de un archivo que se sube de una vez es de {v} GB.",
            "Eine einzelne Datei darf beim Hochladen höchstens {v} GB groß sein.",
            "La taille maximale d'un fichier envoyé en une fois est de {v} Go.",
        ),
    ),
    _t(
        "trash_retention",
        "30",
        "7",
        (
            "How long do deleted files stay in the trash before they are gone?",
            "¿Cuánto tiempo quedan los archivos borrados en la papelera?",
            "Wie lange bleiben gelöschte Dateien im Papierkorb, bevor sie weg sind?",
            "Combien de temps les fichiers supprimés restent-ils dans la corbeille ?",
        ),
        (
            "Deleted files stay in the trash for {v} days before they are removed for good.",
            "Los archivos borrados quedan {v} días en la papelera antes de eliminarse.",
            "Gelöschte Dateien bleiben {v} Tage im Papierkorb, bevor sie entfernt werden.",
            "Les fichiers supprimés restent {v} jours dans la corbeille avant d'être effacés.",
        ),
    ),
    _t(
        "version_history",
        "100",
        "25",
        (
            "How many older versions of a file does Nimbus keep?",
            "¿Cuántas versiones anteriores de un archivo guarda Nimbus?",
            "Wie viele ältere Versionen einer Datei speichert Nimbus?",
            "Combien d'anciennes versions d'un fichier Nimbus conserve-t-il ?",
        ),
        (
            "Nimbus keeps up to {v} previous versions of each file in the version history.",
            "Nimbus guarda hasta {v} versiones anteriores de cada archivo en el historial.",
            "Nimbus speichert bis zu {v} frühere Versionen jeder Datei im Verlauf.",
            "Nimbus conserve jusqu'à {v} versions précédentes de chaque fichier.",
        ),
    ),
    _t(
        "api_rate_limit",
        "600",
        "60",
        (
            "What is the rate limit of the public API for one access token?",
            "¿Cuál es el límite de peticiones de la API pública por token?",
            "Wie hoch ist das Anfragelimit der öffentlichen API pro Zugriffstoken?",
            "Quelle est la limite de requêtes de l'API publique par jeton d'accès ?",
        ),
        (
            "The API allows {v} requests per minute for each access token.",
            "La API permite {v} peticiones por minuto para cada token de acceso.",
            "Die API erlaubt {v} Anfragen pro Minute für jedes Zugriffstoken.",
            "L'API autorise {v} requêtes par minute pour chaque jeton d'accès.",
        ),
    ),
    _t(
        "sso_seats",
        "10",
        "50",
        (
            "Which plans let us use single sign-on with SAML for our company?",
            "¿Qué planes permiten usar inicio de sesión único con SAML?",
            "Welche Tarife erlauben Single Sign-on mit SAML für unsere Firma?",
            "Quelles offres permettent l'authentification unique SAML pour notre société ?",
        ),
        (
            "Single sign-on with SAML is available on plans with at least {v} seats.",
            "El inicio de sesión único con SAML está disponible desde {v} licencias.",
            "Single Sign-on mit SAML gibt es für Tarife ab {v} Lizenzen.",
            "L'authentification unique SAML est disponible à partir de {v} licences.",
        ),
    ),
    _t(
        "shared_links",
        "14",
        "3",
        (
            "When do shared links expire if I do not change anything?",
            "¿Cuándo caducan los enlaces compartidos si no cambio nada?",
            "Wann laufen geteilte Links ab, wenn ich nichts ändere?",
            "Quand les liens partagés expirent-ils si je ne change rien ?",
        ),
        (
            "Shared links expire after {v} days unless you change the link settings.",
            "Los enlaces compartidos caducan a los {v} días si no cambias la configuración.",
            "Geteilte Links laufen nach {v} Tagen ab, außer du änderst die Einstellungen.",
            "Les liens partagés expirent après {v} jours sauf si vous changez le réglage.",
        ),
    ),
    _t(
        "backup_codes",
        "10",
        "5",
        (
            "How many backup codes do I get for two-factor authentication?",
            "¿Cuántos códigos de respaldo recibo para la verificación en dos pasos?",
            "Wie viele Backup-Codes bekomme ich für die Zwei-Faktor-Anmeldung?",
            "Combien de codes de secours ai-je pour la double authentification ?",
        ),
        (
            "Each account gets {v} one-time backup codes for two-factor authentication.",
            "Cada cuenta recibe {v} códigos de respaldo de un solo uso para los dos pasos.",
            "Jedes Konto erhält {v} einmalige Backup-Codes für die Zwei-Faktor-Anmeldung.",
            "Chaque compte reçoit {v} codes de secours à usage unique pour la connexion.",
        ),
    ),
    _t(
        "workspace_export",
        "24",
        "2",
        (
            "How long does it take to export all the data of our workspace?",
            "¿Cuánto tarda la exportación de todos los datos de nuestro espacio?",
            "Wie lange dauert der Export aller Daten unseres Arbeitsbereichs?",
            "Combien de temps prend l'export de toutes les données de notre espace ?",
        ),
        (
            "A full workspace export is usually ready within {v} hours of the request.",
            "Una exportación completa del espacio suele estar lista en {v} horas.",
            "Ein vollständiger Export ist normalerweise innerhalb von {v} Stunden fertig.",
            "Un export complet de l'espace est en général prêt en moins de {v} heures.",
        ),
    ),
    _t(
        "free_members",
        "3",
        "8",
        (
            "How many people can join a workspace on the free plan?",
            "¿Cuántas personas pueden unirse a un espacio con el plan gratuito?",
            "Wie viele Personen können im kostenlosen Tarif einem Arbeitsbereich beitreten?",
            "Combien de personnes peuvent rejoindre un espace avec l'offre gratuite ?",
        ),
        (
            "The free plan supports up to {v} members in each workspace.",
            "El plan gratuito admite hasta {v} miembros en cada espacio de trabajo.",
            "Der kostenlose Tarif erlaubt bis zu {v} Mitglieder pro Arbeitsbereich.",
            "L'offre gratuite accepte jusqu'à {v} membres dans chaque espace de travail.",
        ),
    ),
)

#: Refunds policy (high-stakes route).
REFUND_TOPICS: tuple[_Topic, ...] = (
    _t(
        "refund_window",
        "14",
        "30",
        (
            "Can I still get my money back for a plan I bought last week?",
            "¿Puedo recuperar el dinero de un plan que compré la semana pasada?",
            "Bekomme ich mein Geld für einen Tarif zurück, den ich letzte Woche kaufte?",
            "Puis-je être remboursé d'une offre achetée la semaine dernière ?",
        ),
        (
            "Yes: you can request a full refund within {v} days of the purchase date.",
            "Sí: puedes pedir el reembolso completo en los {v} días posteriores a la compra.",
            "Ja: Du kannst innerhalb von {v} Tagen nach dem Kauf eine volle Erstattung verlangen.",
            "Oui : vous pouvez demander un remboursement complet dans les {v} jours après l'achat.",
        ),
    ),
    _t(
        "annual_fee",
        "5",
        "15",
        (
            "What happens with my money if I cancel the annual plan halfway through?",
            "¿Qué pasa con mi dinero si cancelo el plan anual a mitad de año?",
            "Was passiert mit meinem Geld, wenn ich den Jahrestarif mittendrin kündige?",
            "Que devient mon argent si je résilie l'offre annuelle en cours d'année ?",
        ),
        (
            "You receive a prorated refund for the unused months minus a {v}% processing fee.",
            "Recibes un reembolso proporcional por los meses restantes menos un {v}% de gastos.",
            "Du erhältst eine anteilige Erstattung der Restmonate abzüglich {v}% Gebühr.",
            "Vous recevez un remboursement au prorata des mois restants moins {v}% de frais.",
        ),
    ),
    _t(
        "refund_timing",
        "5",
        "10",
        (
            "How long does it take until an approved refund shows up on my card?",
            "¿Cuánto tarda en llegar a mi tarjeta un reembolso ya aprobado?",
            "Wie lange dauert es, bis eine genehmigte Erstattung auf meiner Karte ist?",
            "Combien de temps faut-il pour qu'un remboursement approuvé arrive sur ma carte ?",
        ),
        (
            "Approved refunds reach your card within {v} business days.",
            "Los reembolsos aprobados llegan a tu tarjeta en {v} días hábiles.",
            "Genehmigte Erstattungen sind innerhalb von {v} Werktagen auf deiner Karte.",
            "Les remboursements approuvés arrivent sur votre carte sous {v} jours ouvrés.",
        ),
    ),
    _t(
        "duplicate_charge",
        "48",
        "72",
        (
            "I was charged twice for the same invoice, what do I need to do?",
            "Me cobraron dos veces la misma factura, ¿qué tengo que hacer?",
            "Mir wurde dieselbe Rechnung zweimal berechnet, was muss ich tun?",
            "On m'a facturé deux fois la même facture, que dois-je faire ?",
        ),
        (
            "Duplicate charges are refunded automatically within {v} hours; nothing to do.",
            "Los cobros duplicados se devuelven solos en {v} horas; no tienes que hacer nada.",
            "Doppelte Abbuchungen werden automatisch in {v} Stunden erstattet; nichts zu tun.",
            "Les doubles prélèvements sont remboursés sous {v} heures ; rien à faire.",
        ),
    ),
    _t(
        "monthly_refund",
        "3",
        "10",
        (
            "My monthly plan renewed yesterday by mistake, can I get that payment back?",
            "Mi plan mensual se renovó ayer por error, ¿me pueden devolver ese pago?",
            "Mein Monatstarif wurde gestern versehentlich verlängert, bekomme ich das zurück?",
            "Mon offre mensuelle s'est renouvelée hier par erreur, puis-je être remboursé ?",
        ),
        (
            "Monthly renewals can be refunded only within {v} days of the renewal date.",
            "Las renovaciones mensuales solo se reembolsan dentro de los {v} días siguientes.",
            "Monatliche Verlängerungen werden nur innerhalb von {v} Tagen erstattet.",
            "Les renouvellements mensuels ne sont remboursés que dans les {v} jours suivants.",
        ),
    ),
    _t(
        "credit_bonus",
        "10",
        "25",
        (
            "Is there any advantage if I take the refund as account credit instead of cash?",
            "¿Hay alguna ventaja si acepto el reembolso como saldo en lugar de dinero?",
            "Gibt es einen Vorteil, wenn ich die Erstattung als Guthaben statt Geld nehme?",
            "Y a-t-il un avantage à prendre le remboursement en crédit plutôt qu'en argent ?",
        ),
        (
            "Refunds taken as account credit get a bonus of {v}% on top of the amount.",
            "Los reembolsos en saldo de cuenta reciben un extra del {v}% sobre el importe.",
            "Erstattungen als Guthaben erhalten einen Bonus von {v}% auf den Betrag.",
            "Les remboursements en crédit reçoivent un bonus de {v}% sur le montant.",
        ),
    ),
    _t(
        "approval_limit",
        "200",
        "1000",
        (
            "Up to what amount can a support agent approve a refund without a manager?",
            "¿Hasta qué importe puede aprobar un agente un reembolso sin un responsable?",
            "Bis zu welchem Betrag darf ein Agent ohne Vorgesetzten eine Erstattung genehmigen?",
            "Jusqu'à quel montant un agent peut-il approuver un remboursement sans manager ?",
        ),
        (
            "Support agents can approve refunds of up to {v} dollars without a manager.",
            "Los agentes pueden aprobar reembolsos de hasta {v} dólares sin un responsable.",
            "Agenten dürfen Erstattungen bis {v} Dollar ohne Vorgesetzten genehmigen.",
            "Les agents peuvent approuver des remboursements jusqu'à {v} dollars sans manager.",
        ),
    ),
    _t(
        "chargeback",
        "30",
        "90",
        (
            "What happens to my account if I open a chargeback with my bank?",
            "¿Qué pasa con mi cuenta si abro una disputa del cargo con mi banco?",
            "Was passiert mit meinem Konto, wenn ich bei der Bank eine Rückbuchung starte?",
            "Qu'arrive-t-il à mon compte si j'ouvre une contestation auprès de ma banque ?",
        ),
        (
            "The account is suspended for {v} days while the bank reviews the chargeback.",
            "La cuenta queda suspendida {v} días mientras el banco revisa la disputa.",
            "Das Konto wird {v} Tage gesperrt, während die Bank die Rückbuchung prüft.",
            "Le compte est suspendu {v} jours pendant que la banque examine la contestation.",
        ),
    ),
)

#: General-assistant chat.
CHAT_TOPICS: tuple[_Topic, ...] = (
    _t(
        "boiling_point",
        "100",
        "90",
        (
            "At what temperature does water boil at sea level?",
            "¿A qué temperatura hierve el agua al nivel del mar?",
            "Bei welcher Temperatur kocht Wasser auf Meereshöhe?",
            "À quelle température l'eau bout-elle au niveau de la mer ?",
        ),
        (
            "At sea level water boils at {v} degrees Celsius.",
            "Al nivel del mar el agua hierve a {v} grados Celsius.",
            "Auf Meereshöhe kocht Wasser bei {v} Grad Celsius.",
            "Au niveau de la mer, l'eau bout à {v} degrés Celsius.",
        ),
    ),
    _t(
        "marathon",
        "42.195",
        "40",
        (
            "How long is a marathon exactly, in kilometres?",
            "¿Cuánto mide exactamente un maratón en kilómetros?",
            "Wie lang ist ein Marathon genau in Kilometern?",
            "Quelle est la distance exacte d'un marathon en kilomètres ?",
        ),
        (
            "A marathon is exactly {v} kilometres long.",
            "Un maratón mide exactamente {v} kilómetros.",
            "Ein Marathon ist genau {v} Kilometer lang.",
            "Un marathon mesure exactement {v} kilomètres.",
        ),
    ),
    _t(
        "chess_board",
        "64",
        "81",
        (
            "How many squares are there on a standard chess board?",
            "¿Cuántas casillas tiene un tablero de ajedrez normal?",
            "Wie viele Felder hat ein normales Schachbrett?",
            "Combien de cases compte un échiquier standard ?",
        ),
        (
            "A standard chess board has {v} squares, in eight rows of eight.",
            "Un tablero de ajedrez normal tiene {v} casillas, en ocho filas de ocho.",
            "Ein normales Schachbrett hat {v} Felder, in acht Reihen zu je acht.",
            "Un échiquier standard compte {v} cases, en huit rangées de huit.",
        ),
    ),
    _t(
        "bones",
        "206",
        "212",
        (
            "How many bones does an adult human body have?",
            "¿Cuántos huesos tiene el cuerpo humano adulto?",
            "Wie viele Knochen hat der Körper eines erwachsenen Menschen?",
            "Combien d'os le corps humain adulte possède-t-il ?",
        ),
        (
            "An adult human body usually has {v} bones.",
            "El cuerpo humano adulto suele tener {v} huesos.",
            "Der Körper eines Erwachsenen hat meist {v} Knochen.",
            "Le corps humain adulte compte en général {v} os.",
        ),
    ),
    _t(
        "everest",
        "8849",
        "7849",
        (
            "How high is Mount Everest according to the latest measurement?",
            "¿Qué altura tiene el Everest según la última medición?",
            "Wie hoch ist der Mount Everest nach der neuesten Messung?",
            "Quelle est la hauteur de l'Everest selon la dernière mesure ?",
        ),
        (
            "The latest survey puts Mount Everest at {v} metres above sea level.",
            "La última medición sitúa el Everest a {v} metros sobre el nivel del mar.",
            "Die neueste Messung ergibt für den Mount Everest {v} Meter Höhe.",
            "La dernière mesure place l'Everest à {v} mètres d'altitude.",
        ),
    ),
    _t(
        "sunlight",
        "8",
        "3",
        (
            "How long does light from the Sun take to reach the Earth?",
            "¿Cuánto tarda la luz del Sol en llegar a la Tierra?",
            "Wie lange braucht das Licht der Sonne bis zur Erde?",
            "Combien de temps met la lumière du Soleil pour atteindre la Terre ?",
        ),
        (
            "Sunlight takes about {v} minutes to reach the Earth.",
            "La luz del Sol tarda unos {v} minutos en llegar a la Tierra.",
            "Das Sonnenlicht braucht etwa {v} Minuten bis zur Erde.",
            "La lumière du Soleil met environ {v} minutes pour arriver sur Terre.",
        ),
    ),
    _t(
        "leap_year",
        "366",
        "365",
        (
            "How many days are there in a leap year?",
            "¿Cuántos días tiene un año bisiesto?",
            "Wie viele Tage hat ein Schaltjahr?",
            "Combien de jours compte une année bissextile ?",
        ),
        (
            "A leap year has {v} days because February gets a 29th day.",
            "Un año bisiesto tiene {v} días porque febrero tiene un día 29.",
            "Ein Schaltjahr hat {v} Tage, weil der Februar einen 29. Tag hat.",
            "Une année bissextile compte {v} jours car février a un 29e jour.",
        ),
    ),
    _t(
        "eiffel",
        "330",
        "250",
        (
            "How tall is the Eiffel Tower including its antennas?",
            "¿Cuánto mide la torre Eiffel con sus antenas?",
            "Wie hoch ist der Eiffelturm mit seinen Antennen?",
            "Quelle est la hauteur de la tour Eiffel avec ses antennes ?",
        ),
        (
            "With its antennas the Eiffel Tower is about {v} metres tall.",
            "Con sus antenas la torre Eiffel mide unos {v} metros.",
            "Mit seinen Antennen ist der Eiffelturm etwa {v} Meter hoch.",
            "Avec ses antennes, la tour Eiffel mesure environ {v} mètres.",
        ),
    ),
    _t(
        "python_index",
        "0",
        "1",
        (
            "At which index does the first element of a Python list sit?",
            "¿En qué índice está el primer elemento de una lista de Python?",
            "An welchem Index steht das erste Element einer Python-Liste?",
            "À quel indice se trouve le premier élément d'une liste Python ?",
        ),
        (
            "Python lists are zero-based, so the first element is at index {v}.",
            "Las listas de Python empiezan en cero: el primer elemento está en el índice {v}.",
            "Python-Listen beginnen bei null, das erste Element hat den Index {v}.",
            "Les listes Python commencent à zéro : le premier élément est à l'indice {v}.",
        ),
    ),
    _t(
        "speed_of_light",
        "300,000",
        "150,000",
        (
            "How fast does light travel in a vacuum?",
            "¿A qué velocidad viaja la luz en el vacío?",
            "Wie schnell bewegt sich Licht im Vakuum?",
            "À quelle vitesse la lumière se déplace-t-elle dans le vide ?",
        ),
        (
            "Light travels at roughly {v} kilometres per second in a vacuum.",
            "La luz viaja a unos {v} kilómetros por segundo en el vacío.",
            "Licht bewegt sich im Vakuum mit etwa {v} Kilometern pro Sekunde.",
            "La lumière se déplace à environ {v} kilomètres par seconde dans le vide.",
        ),
    ),
)

#: Meeting notes to summarise: (question = the notes, answer = the summary).
SUMMARIZE_TOPICS: tuple[_Topic, ...] = (
    _t(
        "q3_budget",
        "12",
        "21",
        (
            "Notes from the finance sync: the marketing budget for the third quarter goes up by "
            "12 percent. Most of the extra money goes to events in Berlin and Madrid. Anna will "
            "send the updated plan to the board on Friday.",
            "Notas de la reunión de finanzas: el presupuesto de marketing del tercer trimestre "
            "sube un 12 por ciento. Casi todo el dinero extra va a eventos en Berlín y Madrid. "
            "Anna enviará el plan al consejo el viernes.",
            "Notizen aus dem Finanztermin: Das Marketingbudget für das dritte Quartal steigt um "
            "12 Prozent. Das meiste zusätzliche Geld geht in Events in Berlin und Madrid. Anna "
            "schickt den Plan am Freitag an den Vorstand.",
            "Notes de la réunion finance : le budget marketing du troisième trimestre augmente de "
            "12 pour cent. L'essentiel de l'argent va aux événements de Berlin et Madrid. Anna "
            "envoie le plan au conseil vendredi.",
        ),
        (
            "The Q3 marketing budget rises by {v}%, mostly for events; Anna sends the plan Friday.",
            "El presupuesto de marketing del T3 sube un {v}%, sobre todo para eventos.",
            "Das Q3-Marketingbudget steigt um {v}%, vor allem für Events; Anna schickt den Plan.",
            "Le budget marketing du T3 augmente de {v}%, surtout pour les événements.",
        ),
    ),
    _t(
        "hiring",
        "4",
        "9",
        (
            "Notes from the engineering meeting: we will hire 4 backend engineers before the end "
            "of the year. Interviews start next Monday and the team lead owns the process. The "
            "budget for recruiting agencies stays the same.",
            "Notas de la reunión de ingeniería: contrataremos a 4 ingenieros de backend antes de "
            "fin de año. Las entrevistas empiezan el lunes y el jefe de equipo lleva el proceso. "
            "El presupuesto de agencias no cambia.",
            "Notizen aus dem Engineering-Meeting: Wir stellen bis Jahresende 4 Backend-Entwickler "
            "ein. Die Gespräche beginnen nächsten Montag und die Teamleitung führt den Prozess. "
            "Das Budget für Agenturen bleibt gleich.",
            "Notes de la réunion technique : nous recruterons 4 ingénieurs backend avant la fin de "
            "l'année. Les entretiens commencent lundi et le chef d'équipe gère le processus. Le "
            "budget des agences ne change pas.",
        ),
        (
            "The team will hire {v} backend engineers by year end; interviews start Monday.",
            "El equipo contratará a {v} ingenieros de backend antes de fin de año.",
            "Das Team stellt bis Jahresende {v} Backend-Entwickler ein; Start ist Montag.",
            "L'équipe recrutera {v} ingénieurs backend d'ici la fin de l'année.",
        ),
    ),
    _t(
        "outage",
        "47",
        "12",
        (
            "Incident review: the login service was down for 47 minutes on Tuesday because a "
            "certificate expired. Customers in Europe were hit the most. We will add an alert "
            "that fires two weeks before any certificate expires.",
            "Revisión del incidente: el acceso estuvo caído 47 minutos el martes porque "
            "caducó un certificado. Los clientes de Europa fueron los más afectados. Añadiremos "
            "una alerta dos semanas antes.",
            "Störungsbericht: Der Login-Dienst war am Dienstag 47 Minuten ausgefallen, weil ein "
            "Zertifikat ablief. Kunden in Europa waren am stärksten betroffen. Wir bauen einen "
            "Alarm zwei Wochen vorher ein.",
            "Revue d'incident : le service de connexion a été coupé 47 minutes mardi car un "
            "certificat avait expiré. Les clients en Europe ont été les plus touchés. Nous "
            "ajoutons une alerte deux semaines avant.",
        ),
        (
            "Login was down {v} minutes after a certificate expired; an early alert will be added.",
            "El acceso cayó {v} minutos por un certificado caducado; se añadirá una alerta.",
            "Der Login fiel {v} Minuten wegen eines Zertifikats aus; ein Alarm kommt dazu.",
            "La connexion a été coupée {v} minutes à cause d'un certificat ; une alerte arrive.",
        ),
    ),
    _t(
        "churn",
        "3.1",
        "1.3",
        (
            "Notes from the customer success review: monthly churn went down to 3.1 percent after "
            "the new onboarding emails. Small teams still leave the most. Next we test a call with "
            "every new account in its first week.",
            "Notas de la revisión de clientes: la baja mensual bajó al 3,1 por ciento tras los "
            "nuevos correos de bienvenida. Los equipos pequeños siguen yéndose más. Ahora "
            "probaremos una llamada en la primera semana.",
            "Notizen aus dem Kundenreview: Die monatliche Kündigungsrate sank nach den neuen "
            "Begrüßungsmails auf 3,1 Prozent. Kleine Teams gehen am häufigsten. Als Nächstes "
            "testen wir einen Anruf in der ersten Woche.",
            "Notes de la revue clients : le taux de départ mensuel est tombé à 3,1 pour cent après "
            "les nouveaux e-mails d'accueil. Les petites équipes partent le plus. Nous testons un "
            "appel la première semaine.",
        ),
        (
            "Monthly churn fell to {v}% after the onboarding emails; small teams still churn most.",
            "La baja mensual bajó al {v}% tras los correos de bienvenida.",
            "Die Kündigungsrate sank auf {v}% nach den Begrüßungsmails; kleine Teams gehen eher.",
            "Le taux de départ est tombé à {v}% après les e-mails d'accueil.",
        ),
    ),
    _t(
        "launch_date",
        "18",
        "28",
        (
            "Notes from the product meeting: the mobile app launches on March 18 in five "
            "countries. The design team still has to finish the dark mode. Support needs the "
            "help articles one week before the launch.",
            "Notas de la reunión de producto: la app móvil se lanza el 18 de marzo en cinco "
            "países. El equipo de diseño aún debe terminar el modo oscuro. Soporte necesita los "
            "artículos una semana antes.",
            "Notizen aus dem Produktmeeting: Die mobile App startet am 18. März in fünf Ländern. "
            "Das Designteam muss noch den Dunkelmodus fertigstellen. Der Support braucht die "
            "Hilfeartikel eine Woche vorher.",
            "Notes de la réunion produit : l'application mobile sort le 18 mars dans cinq pays. "
            "L'équipe design doit encore finir le mode sombre. Le support a besoin des articles "
            "une semaine avant.",
        ),
        (
            "The mobile app launches on March {v} in five countries; dark mode is still open.",
            "La app móvil se lanza el {v} de marzo en cinco países; falta el modo oscuro.",
            "Die mobile App startet am {v}. März in fünf Ländern; der Dunkelmodus fehlt noch.",
            "L'application mobile sort le {v} mars dans cinq pays ; le mode sombre reste à finir.",
        ),
    ),
    _t(
        "office_move",
        "250",
        "120",
        (
            "Notes from the facilities meeting: the new office has room for 250 people and we move "
            "in at the start of next quarter. Parking is limited, so we offer a public transport "
            "pass to everyone.",
            "Notas de la reunión de oficinas: la nueva oficina tiene sitio para 250 personas y nos "
            "mudamos al empezar el próximo trimestre. Hay poco aparcamiento, así que damos un "
            "abono de transporte.",
            "Notizen aus dem Facility-Meeting: Das neue Büro bietet Platz für 250 Personen und wir "
            "ziehen zu Beginn des nächsten Quartals um. Parkplätze sind knapp, also gibt es ein "
            "Nahverkehrsticket.",
            "Notes de la réunion locaux : le nouveau bureau accueille 250 personnes et nous "
            "déménageons au début du prochain trimestre. Le parking est limité, donc chacun reçoit "
            "un abonnement de transport.",
        ),
        (
            "The new office holds {v} people; the move is next quarter.",
            "La nueva oficina tiene sitio para {v} personas; la mudanza es el próximo trimestre.",
            "Das neue Büro fasst {v} Personen; der Umzug ist nächstes Quartal.",
            "Le nouveau bureau accueille {v} personnes ; on déménage au prochain trimestre.",
        ),
    ),
)

#: Openers (prompt prefix) per route family and language; the empty opener keeps some
#: prompts bare.
_OPENERS: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "chat": (
        ("", "", "", ""),
        ("Quick question: ", "Una pregunta rápida: ", "Kurze Frage: ", "Petite question : "),
        (
            "I was wondering about this. ",
            "Me preguntaba esto. ",
            "Ich habe mich gefragt. ",
            "Je me demandais ceci. ",
        ),
        ("Hi! ", "¡Hola! ", "Hallo! ", "Salut ! "),
    ),
    "kb": (
        ("", "", "", ""),
        ("Hello! ", "¡Hola! ", "Hallo! ", "Bonjour ! "),
        (
            "I could not find this in the docs. ",
            "No lo encontré en la ayuda. ",
            "Ich fand das nicht in der Hilfe. ",
            "Je ne l'ai pas trouvé dans l'aide. ",
        ),
    ),
    "summarize": (
        (
            "Summarize these notes in one sentence:\n\n",
            "Resume estas notas en una frase:\n\n",
            "Fasse diese Notizen in einem Satz zusammen:\n\n",
            "Résume ces notes en une phrase :\n\n",
        ),
        (
            "TL;DR please:\n\n",
            "Un resumen corto, por favor:\n\n",
            "Kurz zusammengefasst, bitte:\n\n",
            "Un résumé court, s'il te plaît :\n\n",
        ),
    ),
}

#: Context sentences that lengthen some chat/support prompts (same count in every language).
_CONTEXT: tuple[tuple[str, str, str, str], ...] = (
    (
        "I need it for a presentation tomorrow.",
        "Lo necesito para una presentación mañana.",
        "Ich brauche es morgen für einen Vortrag.",
        "J'en ai besoin pour une présentation demain.",
    ),
    (
        "My colleague told me something different.",
        "Mi compañero me dijo otra cosa.",
        "Mein Kollege hat mir etwas anderes gesagt.",
        "Mon collègue m'a dit autre chose.",
    ),
    (
        "Please keep the answer short and clear.",
        "Por favor, que la respuesta sea breve.",
        "Bitte halte die Antwort kurz und klar.",
        "Merci de garder la réponse courte et claire.",
    ),
    (
        "We are a small team of eight people.",
        "Somos un equipo pequeño de ocho personas.",
        "Wir sind ein kleines Team aus acht Leuten.",
        "Nous sommes une petite équipe de huit.",
    ),
    (
        "I already searched the website for it.",
        "Ya lo busqué en la página web.",
        "Ich habe schon auf der Webseite gesucht.",
        "J'ai déjà cherché sur le site web.",
    ),
    (
        "Thanks a lot in advance for your help.",
        "Muchas gracias de antemano por tu ayuda.",
        "Vielen Dank im Voraus für deine Hilfe.",
        "Merci beaucoup d'avance pour ton aide.",
    ),
)

#: Elaboration sentences appended to answers; their count sets the answer length.
_FILLERS: tuple[tuple[str, str, str, str], ...] = (
    (
        "You can find more details in the documentation under the relevant section.",
        "Puedes encontrar más detalles en la documentación, en la sección correspondiente.",
        "Weitere Details findest du in der Dokumentation im passenden Abschnitt.",
        "Vous trouverez plus de détails dans la documentation, dans la section concernée.",
    ),
    (
        "If anything is still unclear, feel free to ask a follow-up question.",
        "Si algo no está claro, no dudes en hacer otra pregunta.",
        "Wenn noch etwas unklar ist, stell gerne eine weitere Frage.",
        "Si quelque chose reste flou, n'hésitez pas à poser une autre question.",
    ),
    (
        "This applies to all regions and to every kind of account.",
        "Esto se aplica a todas las regiones y a todos los tipos de cuenta.",
        "Das gilt für alle Regionen und für jede Art von Konto.",
        "Cela s'applique à toutes les régions et à tous les types de compte.",
    ),
    (
        "Keep in mind that the rules can change, so check again before you decide.",
        "Ten en cuenta que las reglas pueden cambiar, así que revísalas antes de decidir.",
        "Denk daran, dass sich die Regeln ändern können, prüfe sie also vorher.",
        "Gardez à l'esprit que les règles peuvent changer, vérifiez avant de décider.",
    ),
    (
        "Many people ask about this, so you are not the only one.",
        "Mucha gente pregunta por esto, así que no eres el único.",
        "Viele Leute fragen danach, du bist also nicht der Einzige.",
        "Beaucoup de gens posent cette question, vous n'êtes pas le seul.",
    ),
    (
        "Here is a short example to make the idea more concrete for you.",
        "Aquí tienes un ejemplo corto para que la idea quede más clara.",
        "Hier ist ein kurzes Beispiel, damit die Idee greifbarer wird.",
        "Voici un court exemple pour rendre l'idée plus concrète.",
    ),
    (
        "In most cases this works right away without any extra steps.",
        "En la mayoría de los casos funciona enseguida sin pasos adicionales.",
        "In den meisten Fällen klappt das sofort ohne weitere Schritte.",
        "Dans la plupart des cas, cela fonctionne tout de suite sans étape de plus.",
    ),
    (
        "Let me walk you through the reasoning step by step so it is easy to follow.",
        "Te explico el razonamiento paso a paso para que sea fácil de seguir.",
        "Ich erkläre dir die Überlegung Schritt für Schritt, damit du folgen kannst.",
        "Je vous explique le raisonnement étape par étape pour que ce soit clair.",
    ),
    (
        "The same answer holds for both the web app and the mobile app.",
        "La misma respuesta vale para la aplicación web y para la móvil.",
        "Dieselbe Antwort gilt für die Web-App und für die mobile App.",
        "La même réponse vaut pour l'application web et pour l'application mobile.",
    ),
    (
        "Administrators see a few extra options that regular members do not have.",
        "Los administradores ven algunas opciones extra que los miembros no tienen.",
        "Administratoren sehen ein paar zusätzliche Optionen, die Mitglieder nicht haben.",
        "Les administrateurs voient quelques options de plus que les membres n'ont pas.",
    ),
    (
        "A quick way to check this yourself is to open the settings page.",
        "Una forma rápida de comprobarlo es abrir la página de configuración.",
        "Am schnellsten prüfst du das selbst auf der Seite mit den Einstellungen.",
        "Le plus simple pour le vérifier est d'ouvrir la page des paramètres.",
    ),
    (
        "I hope this helps you move forward with your work today.",
        "Espero que esto te ayude a avanzar hoy con tu trabajo.",
        "Ich hoffe, das hilft dir heute bei deiner Arbeit weiter.",
        "J'espère que cela vous aide à avancer dans votre travail aujourd'hui.",
    ),
)

_REFUSALS: tuple[tuple[str, str, str, str], ...] = (
    (
        "I'm sorry, but I can't help with that.",
        "Lo siento, pero no puedo ayudar con eso.",
        "Es tut mir leid, aber ich kann dabei nicht helfen.",
        "Je suis désolé, mais je ne peux pas vous aider avec cela.",
    ),
    (
        "I can't assist with that request.",
        "No puedo ayudarte con esa solicitud.",
        "Tut mir leid, ich kann Ihnen damit nicht helfen.",
        "Je ne peux pas répondre à cette demande.",
    ),
    (
        "Sorry, I'm not able to provide that information.",
        "Lo siento, no puedo proporcionar esa información.",
        "Tut mir leid, aber ich kann dir hierbei nicht weiterhelfen.",
        "Désolé, je ne peux pas fournir cette information.",
    ),
    (
        "I'm unable to help with this. Please contact a human agent.",
        "No puedo ayudar con esto. Por favor, contacta con un agente.",
        "Ich kann hierbei nicht helfen. Bitte wende dich an einen Mitarbeiter.",
        "Je ne peux pas aider sur ce point. Veuillez contacter un agent.",
    ),
    (
        "As an AI assistant, I cannot answer that question.",
        "Como asistente de IA, no puedo ayudar con esa pregunta.",
        "Als KI-Assistent kann ich diese Frage nicht beantworten.",
        "En tant qu'assistant IA, je ne peux pas répondre à cette question.",
    ),
)

_ACKS: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "support_agent": (
        (
            "Thanks for reaching out! ",
            "¡Gracias por escribirnos! ",
            "Danke für deine Nachricht! ",
            "Merci de nous avoir écrit ! ",
        ),
        ("Happy to help. ", "Encantado de ayudar. ", "Gerne helfe ich. ", "Avec plaisir. "),
    ),
    "refunds": (
        ("", "", "", ""),
        (
            "Thanks for your patience. ",
            "Gracias por tu paciencia. ",
            "Danke für deine Geduld. ",
            "Merci de votre patience. ",
        ),
    ),
}

SYSTEM_PROMPTS: dict[str, str] = {
    "chat": "You are Nimbus Assistant. Answer in the user's language, accurately and briefly.",
    "search_qa": "Answer from the help centre documents only and cite them like [doc-101].",
    "summarize": "Summarise the notes in one sentence. Keep every number exactly.",
    "support_agent": "You are a Nimbus support agent. Use the knowledge base, cite [doc-N].",
    "refunds": "Answer refund questions strictly by the refund policy. Quote it exactly.",
}
#: The regression release ships a rewritten system prompt (the root cause a user would find).
_REGRESSION_SYSTEM = "You are a creative Nimbus assistant. Answer freely; documents are optional."

# --------------------------------------------------------------------------------------
# Models, providers, prices (list prices, USD per million tokens) and performance.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Model:
    name: str
    provider: str
    ttft_ms: float  # median time to first token at ~1k input tokens
    tpot_ms: float  # median time per output token
    price_in: float
    price_cached: float
    price_out: float
    price_cache_write: float = 0.0
    reasoning: bool = False


MODELS: tuple[_Model, ...] = (
    _Model("gpt-4o", "openai", 450, 12, 2.50, 1.25, 10.00),
    _Model("gpt-4o-mini", "openai", 330, 8, 0.15, 0.075, 0.60),
    _Model("o3-mini", "openai", 380, 7, 1.10, 0.55, 4.40, reasoning=True),
    _Model("claude-3-5-sonnet-20241022", "anthropic", 700, 15, 3.00, 0.30, 15.00, 3.75),
    _Model("claude-3-5-haiku-20241022", "anthropic", 520, 9, 0.80, 0.08, 4.00, 1.00),
    _Model("gemini-1.5-flash", "google", 300, 5, 0.075, 0.01875, 0.30),
    _Model("mistral-large-latest", "mistral", 600, 16, 2.00, 2.00, 6.00),
    _Model("deepseek-chat", "deepseek", 900, 22, 0.27, 0.07, 1.10),
)
_MODEL_INDEX = {m.name: i for i, m in enumerate(MODELS)}

#: Model mix per route (shares of sessions).
ROUTE_MODELS: dict[str, dict[str, float]] = {
    "chat": {"gpt-4o-mini": 0.50, "gemini-1.5-flash": 0.20, "deepseek-chat": 0.15, "gpt-4o": 0.15},
    "search_qa": {"gpt-4o": 0.50, "claude-3-5-sonnet-20241022": 0.35, "mistral-large-latest": 0.15},
    "summarize": {"gpt-4o-mini": 0.40, "claude-3-5-haiku-20241022": 0.30, "gemini-1.5-flash": 0.30},
    "support_agent": {"claude-3-5-sonnet-20241022": 0.60, "gpt-4o": 0.40},
    "refunds": {"o3-mini": 0.60, "gpt-4o": 0.40},
}


@dataclass(frozen=True)
class _Route:
    name: str
    topics: tuple[_Topic, ...]
    opener: str  # key of _OPENERS
    session_mean: float  # mean calls per session
    gap_s: float  # mean seconds between calls of a session
    answer_chars: float  # median target answer length (characters)
    max_tokens: int
    temperature: float
    overhead_tokens: float  # median input tokens not in the logged text (tools, few-shot)
    rag: bool
    reference_share: float
    refusal_rate: float
    error_rate: float
    timeout_ms: float
    context_max: int  # up to this many context sentences in the prompt
    features: tuple[str, ...]
    tags: tuple[str, ...]
    cite_share: float = 0.0


_ROUTES: dict[str, _Route] = {
    "chat": _Route(
        name="chat",
        topics=CHAT_TOPICS,
        opener="chat",
        session_mean=4.0,
        gap_s=50,
        answer_chars=300,
        max_tokens=1024,
        temperature=0.7,
        overhead_tokens=250,
        rag=False,
        reference_share=0.0,
        refusal_rate=0.02,
        error_rate=0.010,
        timeout_ms=60_000,
        context_max=3,
        features=("assistant", "onboarding", "mobile_app"),
        tags=("web",),
    ),
    "search_qa": _Route(
        name="search_qa",
        topics=KB_TOPICS,
        opener="kb",
        session_mean=1.6,
        gap_s=35,
        answer_chars=190,
        max_tokens=512,
        temperature=0.2,
        overhead_tokens=900,
        rag=True,
        reference_share=0.4,
        refusal_rate=0.01,
        error_rate=0.008,
        timeout_ms=30_000,
        context_max=0,
        features=("help_center", "docs_search"),
        tags=("rag", "help-center"),
        cite_share=0.8,
    ),
    "summarize": _Route(
        name="summarize",
        topics=SUMMARIZE_TOPICS,
        opener="summarize",
        session_mean=1.2,
        gap_s=20,
        answer_chars=110,
        max_tokens=256,
        temperature=0.3,
        overhead_tokens=2200,
        rag=False,
        reference_share=0.0,
        refusal_rate=0.005,
        error_rate=0.006,
        timeout_ms=30_000,
        context_max=0,
        features=("meeting_notes", "inbox"),
        tags=("batch",),
    ),
    "support_agent": _Route(
        name="support_agent",
        topics=KB_TOPICS,
        opener="kb",
        session_mean=3.0,
        gap_s=70,
        answer_chars=250,
        max_tokens=768,
        temperature=0.4,
        overhead_tokens=1800,
        rag=True,
        reference_share=0.0,
        refusal_rate=0.015,
        error_rate=0.012,
        timeout_ms=45_000,
        context_max=2,
        features=("support_widget", "email"),
        tags=("rag", "agent"),
        cite_share=0.6,
    ),
    "refunds": _Route(
        name="refunds",
        topics=REFUND_TOPICS,
        opener="kb",
        session_mean=1.5,
        gap_s=60,
        answer_chars=190,
        max_tokens=2048,
        temperature=0.0,
        overhead_tokens=1200,
        rag=False,
        reference_share=0.6,
        refusal_rate=0.01,
        error_rate=0.005,
        timeout_ms=60_000,
        context_max=1,
        features=("billing_portal", "support_widget"),
        tags=("high-stakes", "billing"),
    ),
}

#: The topic each route's questions surge to under a ``topic`` drift.
_HOT_TOPIC: dict[str, str] = {
    "chat": "python_index",
    "search_qa": "password_reset",
    "summarize": "outage",
    "support_agent": "password_reset",
    "refunds": "duplicate_charge",
}

_TIERS = ("free", "pro", "enterprise")
_REGIONS = ("us-east", "eu-west", "ap-south")
_N_CUSTOMERS = 400
_RELEASES = ("v1.0.0", "v1.1.0", "v1.2.0")
_MAX_FILLERS = 12
_FILLER_VARIANTS = 24
_CHARS_PER_TOKEN = 4.0

#: Error messages in the shapes real SDKs log, with their shares.
_ERRORS: tuple[str, ...] = (
    "429 Too Many Requests: rate limit exceeded, retry after 2s",
    "500 Internal Server Error: the server had an error while processing your request",
    "503 Service Unavailable: the model is overloaded, please try again later",
    "400 Bad Request: context_length_exceeded",
    "502 Bad Gateway: upstream connect error",
)
_ERROR_P = np.array([0.45, 0.2, 0.2, 0.05, 0.1])


# --------------------------------------------------------------------------------------
# Shares and validation
# --------------------------------------------------------------------------------------


def _rates(route_rates: dict[str, float] | None) -> dict[str, float]:
    rates = dict(ROUTE_RATES)
    for name, rate in (route_rates or {}).items():
        if name not in rates:
            raise UsageError(f"route_rates: unknown route '{name}' (routes: {', '.join(ROUTES)})")
        if not (0 < float(rate) <= 1):
            raise UsageError(f"route_rates: {name}: sample rate must be in (0, 1], got {rate}")
        rates[name] = float(rate)
    return rates


def population_shares() -> dict[str, float]:
    """Share of the *population* (all calls) per route: Zipf over the route rank."""
    raw = {r: 1.0 / (k + 1) ** ZIPF_EXPONENT for k, r in enumerate(ROUTES)}
    total = sum(raw.values())
    return {r: v / total for r, v in raw.items()}


def row_shares(route_rates: dict[str, float] | None = None) -> dict[str, float]:
    """Share of the *sampled rows* per route: population share × sample rate, normalised."""
    rates = _rates(route_rates)
    pop = population_shares()
    raw = {r: pop[r] * rates[r] for r in ROUTES}
    total = sum(raw.values())
    return {r: v / total for r, v in raw.items()}


def _utc(value: datetime | date) -> datetime:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _mix(mix: dict[str, float], what: str) -> np.ndarray:
    unknown = [k for k in mix if k not in LANGUAGES]
    if unknown:
        raise UsageError(
            f"{what}: unknown language '{unknown[0]}' (languages: {', '.join(LANGUAGES)})"
        )
    p = np.array([float(mix.get(k, 0.0)) for k in LANGUAGES])
    if (p < 0).any() or p.sum() <= 0 or not np.isfinite(p).all():
        raise UsageError(f"{what}: shares must be >= 0 and sum to more than 0")
    return p / p.sum()


def _check(drift: DriftSpec | None, regression: RegressionSpec | None) -> None:
    if drift is not None:
        if not drift.response_length > 0:
            raise UsageError(f"drift: response_length must be > 0, got {drift.response_length}")
        if not -1 <= drift.refusal_rate <= 1:
            raise UsageError(f"drift: refusal_rate must be in [-1, 1], got {drift.refusal_rate}")
        if not 0 <= drift.topic_shift <= 1:
            raise UsageError(f"drift: topic_shift must be in [0, 1], got {drift.topic_shift}")
        if not -1 <= drift.retrieval_score <= 1:
            raise UsageError(
                f"drift: retrieval_score must be in [-1, 1], got {drift.retrieval_score}"
            )
        for r in drift.routes or []:
            if r not in ROUTES:
                raise UsageError(f"drift: unknown route '{r}' (routes: {', '.join(ROUTES)})")
    if regression is not None:
        if regression.route not in ROUTES:
            raise UsageError(
                f"regression: unknown route '{regression.route}' (routes: {', '.join(ROUTES)})"
            )
        if not 0 <= regression.severity <= 1:
            raise UsageError(f"regression: severity must be in [0, 1], got {regression.severity}")
        if not regression.release or regression.release in _RELEASES:
            raise UsageError(
                f"regression: release must be a new release name, got '{regression.release}'"
            )


class _Streams:
    """Independent random streams named by purpose, so that adding a draw to one aspect
    does not reshuffle the others."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def __call__(self, name: str) -> np.random.Generator:
        return np.random.default_rng(
            [self.seed & 0xFFFFFFFF, self.seed >> 32, zlib.crc32(name.encode())]
        )


_HEX_PAIRS = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")


def _hex_ids(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """``n`` random lowercase hex strings of ``width`` (even) characters, vectorised:
    random bytes mapped through a 256-entry table of hex pairs."""
    raw = rng.integers(0, 256, size=(n, width // 2), dtype=np.uint8)
    return _HEX_PAIRS[raw].view(f"S{width}").ravel()


def _gather(pool: Sequence[str], idx: np.ndarray) -> pl.Series:
    return pl.Series(list(pool), dtype=pl.String).gather(pl.Series(idx.astype(np.int64)))


# --------------------------------------------------------------------------------------
# Precomputed string pools (small; rows pick from them by index)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pools:
    topic_offset: np.ndarray  # per route: first global topic id
    topic_count: np.ndarray  # per route
    topic_names: list[str]  # per global topic
    topic_kb: np.ndarray  # per global topic: KB index (-1 for non-KB topics)
    questions: list[str]  # [gtopic * 4 + lang]
    answers: list[str]  # [(gtopic * 4 + lang) * 2 + wrong]
    answer_len: np.ndarray
    openers: list[str]  # [(route * 4 + opener) * 4 + lang]
    opener_count: np.ndarray  # per route
    contexts: list[str]  # [(lang * 4 + k) * 6 + start]
    fillers: list[str]  # [(lang * (MAX+1) + m) * VARIANTS + variant]
    filler_mean: np.ndarray  # per language: mean characters per filler sentence (with space)
    refusals: list[str]  # [refusal * 4 + lang]
    acks: list[str]  # [(route * 2 + ack) * 4 + lang]
    ack_len: np.ndarray
    docs: list[str]  # KB documents (English), [kb]
    doc_ids: list[str]
    systems: list[str]  # [route * 2 + regression]
    system_len: np.ndarray


_POOLS: _Pools | None = None


def _pools() -> _Pools:
    global _POOLS
    if _POOLS is not None:
        return _POOLS
    nl = len(LANGUAGES)
    offsets, counts, names, kb_index = [], [], [], []
    questions: list[str] = []
    answers: list[str] = []
    for r in ROUTES:
        topics = _ROUTES[r].topics
        offsets.append(len(names))
        counts.append(len(topics))
        for t in topics:
            names.append(t.name)
            kb_index.append(KB_TOPICS.index(t) if t in KB_TOPICS else -1)
            for lang in range(nl):
                questions.append(t.question[lang])
                answers.append(t.answer[lang].format(v=t.value))
                answers.append(t.answer[lang].format(v=t.wrong))
    openers: list[str] = []
    opener_count = []
    for r in ROUTES:
        fam = _OPENERS[_ROUTES[r].opener]
        opener_count.append(len(fam))
        for k in range(4):
            for lang in range(nl):
                openers.append(fam[k % len(fam)][lang])
    contexts = [
        "".join(" " + _CONTEXT[(s + j) % len(_CONTEXT)][lang] for j in range(k))
        for lang in range(nl)
        for k in range(4)
        for s in range(len(_CONTEXT))
    ]
    # A fixed (seed-independent) arrangement of filler sentences per variant, so that the
    # pool is the same in every run and every language uses the same sentence order.
    # Each variant walks a permutation of the sentences, so an answer repeats none.
    perm = np.random.default_rng(20261122)
    order = np.stack([perm.permutation(len(_FILLERS)) for _ in range(_FILLER_VARIANTS)])
    fillers = [
        "".join(" " + _FILLERS[order[v, j % len(_FILLERS)]][lang] for j in range(m))
        for lang in range(nl)
        for m in range(_MAX_FILLERS + 1)
        for v in range(_FILLER_VARIANTS)
    ]
    filler_mean = np.array([np.mean([len(f[lang]) + 1 for f in _FILLERS]) for lang in range(nl)])
    refusals = [r[lang] for r in _REFUSALS for lang in range(nl)]
    acks = []
    for r in ROUTES:
        fam = _ACKS.get(r, (("", "", "", ""),))
        for k in range(2):
            for lang in range(nl):
                acks.append(fam[k % len(fam)][lang])
    docs = [
        f"{t.name.replace('_', ' ').capitalize()}: {t.answer[0].format(v=t.value)}"
        for t in KB_TOPICS
    ]
    doc_ids = [f"doc-{101 + i}" for i in range(len(KB_TOPICS))]
    systems = [s for r in ROUTES for s in (SYSTEM_PROMPTS[r], _REGRESSION_SYSTEM)]
    _POOLS = _Pools(
        topic_offset=np.array(offsets),
        topic_count=np.array(counts),
        topic_names=names,
        topic_kb=np.array(kb_index),
        questions=questions,
        answers=answers,
        answer_len=np.array([len(a) for a in answers]),
        openers=openers,
        opener_count=np.array(opener_count),
        contexts=contexts,
        fillers=fillers,
        filler_mean=filler_mean,
        refusals=refusals,
        acks=acks,
        ack_len=np.array([len(a) for a in acks]),
        docs=docs,
        doc_ids=doc_ids,
        systems=systems,
        system_len=np.array([len(s) for s in systems]),
    )
    return _POOLS


# --------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------

_US = 1_000_000
_DAY_US = 86_400 * _US


def _epoch_us(dt: datetime) -> int:
    return int((dt - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * _US + dt.microsecond


def _choice_cdf(u: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Vectorised categorical draw from uniforms ``u`` and probabilities ``p``."""
    cdf = np.cumsum(p)
    cdf[-1] = 1.0
    return np.searchsorted(cdf, u, side="right").clip(0, len(p) - 1)


def generate(
    rows: int,
    seed: int = 0,
    *,
    start: datetime | date | None = None,
    days: int = 42,
    drift: DriftSpec | None = None,
    regression: RegressionSpec | None = None,
    route_rates: dict[str, float] | None = None,
    drift_kinds: Sequence[str] | None = None,
) -> pl.DataFrame:
    """``rows`` sampled rows of realistic traces over ``days`` days from ``start``.

    ``drift_kinds`` limits the drift to some of :data:`DRIFT_KINDS` (default: all that the
    spec sets). Raises :class:`UsageError` for impossible arguments.
    """
    if rows < 0:
        raise UsageError(f"rows must be >= 0, got {rows}")
    if days < 1:
        raise UsageError(f"days must be >= 1, got {days}")
    if seed < 0:
        raise UsageError(f"seed must be >= 0, got {seed}")
    rates = _rates(route_rates)
    _check(drift, regression)
    kinds = set(DRIFT_KINDS if drift_kinds is None else drift_kinds)
    bad_kind = kinds - set(DRIFT_KINDS)
    if bad_kind:
        raise UsageError(
            f"drift kinds: unknown '{sorted(bad_kind)[0]}' (kinds: {', '.join(DRIFT_KINDS)})"
        )
    start_dt = _utc(start if start is not None else DEFAULT_START)
    if rows == 0:
        return pl.DataFrame(schema=SCHEMA)
    P = _pools()
    S = _Streams(seed)
    nr = len(ROUTES)
    R = [_ROUTES[r] for r in ROUTES]
    start_us = _epoch_us(start_dt)
    end_us = start_us + days * _DAY_US

    # ---- sessions: route, length, who, when -------------------------------------------
    shares = row_shares(route_rates)
    sess_mean = np.array([r.session_mean for r in R])
    sp = np.array([shares[r] for r in ROUTES]) / sess_mean
    rs = S("sessions")
    s_route = _choice_cdf(rs.random(rows), sp / sp.sum())
    s_len = rs.geometric(1.0 / sess_mean[s_route])
    cum = np.cumsum(s_len)
    n_sess = int(np.searchsorted(cum, rows)) + 1
    s_route, s_len = s_route[:n_sess], s_len[:n_sess].copy()
    s_len[-1] -= int(cum[n_sess - 1]) - rows
    ru = S("session_attrs")
    s_lang_u = ru.random(n_sess)
    cust_p = 1.0 / np.arange(1, _N_CUSTOMERS + 1) ** 1.1
    s_cust = _choice_cdf(ru.random(n_sess), cust_p / cust_p.sum())
    user_p = 1.0 / np.arange(1, 26)
    s_user = _choice_cdf(ru.random(n_sess), user_p / user_p.sum())
    s_feature_u = ru.random(n_sess)
    s_model_u = ru.random(n_sess)
    s_ids = _hex_ids(ru, n_sess, 16)
    # Start times: weekday-weighted day, diurnal hour (peak mid-afternoon UTC).
    rt = S("time")
    first_wd = start_dt.weekday()
    day_w = np.where(((first_wd + np.arange(days)) % 7) >= 5, 0.65, 1.0)
    hours = np.arange(24)
    hour_w = 0.25 + np.exp(-0.5 * ((hours - 15) / 4.0) ** 2)
    s_day = _choice_cdf(rt.random(n_sess), day_w / day_w.sum())
    s_hour = _choice_cdf(rt.random(n_sess), hour_w / hour_w.sum())
    s_start = (
        start_us
        + s_day * _DAY_US
        + s_hour * 3600 * _US
        + (rt.random(n_sess) * 3600 * _US).astype(np.int64)
    )

    # ---- rows ------------------------------------------------------------------------
    sess = np.repeat(np.arange(n_sess), s_len)
    first_row = np.cumsum(s_len) - s_len
    turn = np.arange(rows) - first_row[sess]
    route = s_route[sess]
    gap_mean = np.array([r.gap_s for r in R])[route]
    gaps = (rt.exponential(1.0, rows) * gap_mean * _US).astype(np.int64)
    gaps[turn == 0] = 0
    csum = np.cumsum(gaps)
    offset = csum - csum[first_row][sess]
    dur = offset[np.cumsum(s_len) - 1]
    s_start = np.minimum(s_start, end_us - dur - _US)
    ts = s_start[sess] + offset

    # Drift / regression masks (by row timestamp; language by session start).
    def _drift_mask(kind: str, on: np.ndarray, when: np.ndarray) -> np.ndarray:
        if drift is None or kind not in kinds:
            return np.zeros(len(on), dtype=bool)
        ok = when >= _epoch_us(_utc(drift.after))
        if drift.routes is not None:
            ok &= np.isin(on, [ROUTES.index(r) for r in drift.routes])
        return ok

    lang_base = _choice_cdf(s_lang_u, _mix(BASE_LANGUAGE, "language"))
    if drift is not None and drift.language is not None:
        lang_drift = _choice_cdf(s_lang_u, _mix(drift.language, "drift.language"))
        s_lang = np.where(_drift_mask("language", s_route, s_start), lang_drift, lang_base)
    else:
        s_lang = lang_base
    lang = s_lang[sess]
    d_len = _drift_mask("length", route, ts)
    d_ref = _drift_mask("refusals", route, ts)
    d_ret = _drift_mask("retrieval", route, ts)
    d_topic = _drift_mask("topic", route, ts)
    if regression is not None:
        reg = (route == ROUTES.index(regression.route)) & (ts >= _epoch_us(_utc(regression.after)))
    else:
        reg = np.zeros(rows, dtype=bool)

    # Releases: v1.0.0 → v1.1.0 → v1.2.0 at route-specific points of the period.
    rel_idx = np.zeros(rows, dtype=np.int64)
    for k in range(nr):
        for j, frac in enumerate((0.22 + 0.06 * k, 0.50 + 0.05 * k), start=1):
            rel_idx[(route == k) & (ts >= start_us + int(frac * days * _DAY_US))] = j

    # Model per session.
    s_model = np.zeros(n_sess, dtype=np.int64)
    for k, r in enumerate(ROUTES):
        names = list(ROUTE_MODELS[r])
        p = np.array([ROUTE_MODELS[r][m] for m in names])
        idx = np.array([_MODEL_INDEX[m] for m in names])
        sel = s_route == k
        s_model[sel] = idx[_choice_cdf(s_model_u[sel], p / p.sum())]
    model = s_model[sess]
    m_provider = np.array([m.provider for m in MODELS])[model]

    # ---- content ----------------------------------------------------------------------
    rc = S("content")
    topic_local = (rc.random(rows) * P.topic_count[route]).astype(np.int64)
    if drift is not None and drift.topic_shift > 0:
        # A topic surge (say, an incident that makes everyone ask about password resets):
        # its own stream, so that the other draws stay the same.
        hot = np.array([[t.name for t in r.topics].index(_HOT_TOPIC[r.name]) for r in R])[route]
        surge = d_topic & (S("topic_drift").random(rows) < drift.topic_shift)
        topic_local = np.where(surge, hot, topic_local)
    gtopic = P.topic_offset[route] + topic_local
    other = P.topic_offset[route] + (
        (topic_local + 1 + (rc.random(rows) * (P.topic_count[route] - 1)).astype(np.int64))
        % P.topic_count[route]
    )
    opener = (rc.random(rows) * P.opener_count[route]).astype(np.int64)
    ctx_max = np.array([r.context_max for r in R])[route]
    ctx_k = (rc.random(rows) * (ctx_max + 1)).astype(np.int64)
    ctx_s = rc.integers(0, len(_CONTEXT), rows)
    fill_var = rc.integers(0, _FILLER_VARIANTS, rows)
    ack = rc.integers(0, 2, rows)
    refusal_pick = rc.integers(0, len(_REFUSALS), rows)
    cite_u = rc.random(rows)
    ref_u = rc.random(rows)
    beta_u = rc.random(rows)
    length_noise = rc.lognormal(0.0, 0.45, rows)
    trunc_frac = rc.uniform(0.35, 0.7, rows)
    round_u = rc.random(rows)
    rq = S("quality")
    u_err, u_to, u_cf, u_ref, u_reg, u_kind, u_nat = (rq.random(rows) for _ in range(7))
    err_kind = _choice_cdf(rq.random(rows), _ERROR_P / _ERROR_P.sum())

    # Outcome per row (precedence: error/timeout > filtered > refusal > regression > natural).
    refusal_p = np.array([r.refusal_rate for r in R])[route]
    if drift is not None:
        refusal_p = refusal_p + np.where(d_ref, drift.refusal_rate, 0.0)
    err_p = np.array([r.error_rate for r in R])[route]
    is_err = u_err < err_p
    is_to = ~is_err & (u_to < 0.003)
    ok = ~is_err & ~is_to
    filtered = ok & (u_cf < 0.002)
    refused = ok & ~filtered & (u_ref < refusal_p)
    answered = ok & ~filtered & ~refused
    sev = regression.severity if regression is not None else 0.0
    bad_reg = answered & reg & (u_reg < sev)
    wrong = (bad_reg & (u_kind < 0.5)) | (answered & ~bad_reg & (u_nat < 0.03))
    offtopic = (bad_reg & (u_kind >= 0.5) & (u_kind < 0.75)) | (
        answered & ~bad_reg & (u_nat >= 0.03) & (u_nat < 0.04)
    )
    truncated = (bad_reg & (u_kind >= 0.75)) | (
        answered & ~bad_reg & (u_nat >= 0.04) & (u_nat < 0.05)
    )

    # Answer assembly: ack + core (+ citation) + fillers up to a target length.
    nl = len(LANGUAGES)
    core_topic = np.where(offtopic, other, gtopic)
    core_idx = (core_topic * nl + lang) * 2 + wrong.astype(np.int64)
    ack_idx = (route * 2 + ack) * nl + lang
    rag = np.array([r.rag for r in R])[route]
    cite = rag & (cite_u < np.array([r.cite_share for r in R])[route])
    core_kb = P.topic_kb[core_topic]
    cite &= core_kb >= 0
    cite_text_len = np.where(cite, 11, 0)  # " [doc-NNN]" plus the period spacing
    # Fillers make up the rest of a target length; stochastic rounding keeps the expected
    # length exact, so a drift multiplier scales the mean answer length by that factor.
    target = np.array([r.answer_chars for r in R])[route] * length_noise
    fixed = P.ack_len[ack_idx] + P.answer_len[core_idx] + cite_text_len
    fm = P.filler_mean[lang]
    n_fill = np.floor(np.clip((target - fixed) / fm, 0, None) + round_u)
    if drift is not None:
        grown = (drift.response_length * (fixed + n_fill * fm) - fixed) / fm
        n_fill = np.where(d_len, np.floor(np.clip(grown, 0, None) + round_u), n_fill)
    n_fill = np.clip(n_fill, 0, _MAX_FILLERS).astype(np.int64)
    fill_idx = (lang * (_MAX_FILLERS + 1) + n_fill) * _FILLER_VARIANTS + fill_var

    cols = pl.DataFrame(
        {
            "ack": _gather(P.acks, ack_idx),
            "core": _gather(P.answers, core_idx),
            "cite": pl.Series(np.where(cite, P.topic_kb[core_topic], 0)).cast(pl.String),
            "fill": _gather(P.fillers, fill_idx),
            "refusal": _gather(P.refusals, refusal_pick * nl + lang),
            "opener": _gather(P.openers, (route * 4 + opener) * nl + lang),
            "question": _gather(P.questions, gtopic * nl + lang),
            "context": _gather(P.contexts, (lang * 4 + ctx_k) * len(_CONTEXT) + ctx_s),
            "reference": _gather(P.answers, (gtopic * nl + lang) * 2),
        }
    )
    c = pl.col
    full = pl.concat_str(
        c("ack"),
        c("core"),
        pl.when(pl.Series(cite))
        .then(
            pl.concat_str(
                pl.lit(" [doc-"), (c("cite").cast(pl.Int64) + 101).cast(pl.String), pl.lit("]")
            )
        )
        .otherwise(pl.lit("")),
        c("fill"),
    )
    text = cols.select(
        full.alias("full"),
        pl.concat_str(c("opener"), c("question"), c("context")).alias("prompt"),
        c("refusal"),
        c("reference"),
    )
    del cols
    response = text.select(
        pl.when(pl.Series(answered))
        .then(c("full"))
        .when(pl.Series(refused))
        .then(c("refusal"))
        .when(pl.Series(filtered))
        .then(pl.lit(""))
        .otherwise(None)
        .alias("response")
    )["response"]
    # Truncation (a few percent of rows): cut the full answer mid-way, at a word boundary.
    cut_at = np.flatnonzero(answered & truncated)
    if cut_at.size:
        full_cut = text["full"].gather(cut_at)
        keep = (full_cut.str.len_chars().to_numpy() * trunc_frac[cut_at]).astype(np.int64)
        cut = full_cut.str.slice(0, pl.Series(keep)).str.replace(r"\s+\S*$", "")
        response = response.scatter(cut_at, cut)
    resp_len = response.str.len_chars().fill_null(0).to_numpy()
    prompt = text["prompt"]
    prompt_len = prompt.str.len_chars().to_numpy()

    # ---- tokens -------------------------------------------------------------------------
    rk = S("tokens")
    is_reasoning = np.array([m.reasoning for m in MODELS])[model]
    max_tok = np.array([r.max_tokens for r in R])[route]
    sys_idx = route * 2 + reg.astype(np.int64)
    multi = np.isin(route, [ROUTES.index("chat"), ROUTES.index("support_agent")])
    prev_ok = np.zeros(rows, dtype=bool)
    prev_ok[1:] = (turn[1:] > 0) & ok[:-1]
    hist_chars = np.where(
        multi & (turn > 0), np.r_[0, prompt_len[:-1]] + np.r_[0, resp_len[:-1]], 0
    )
    n_docs = np.where(rag, rk.integers(2, 5, rows), 0)
    doc_chars = n_docs * int(np.mean([len(d) for d in P.docs]))
    overhead = np.array([r.overhead_tokens for r in R])[route] * rk.lognormal(0, 0.35, rows)
    in_chars = P.system_len[sys_idx] + prompt_len + hist_chars + doc_chars
    input_tokens = np.rint(in_chars / _CHARS_PER_TOKEN * rk.uniform(0.92, 1.08, rows) + overhead)
    input_tokens = input_tokens.astype(np.int64)
    visible = np.ceil(resp_len / _CHARS_PER_TOKEN * rk.lognormal(0, 0.08, rows)).astype(np.int64)
    visible = np.where(filtered, rk.integers(5, 60, rows), visible)
    reasoning = np.where(
        is_reasoning, np.rint(rk.lognormal(np.log(380), 0.7, rows)).astype(np.int64), 0
    )
    # A finished answer fits in max_tokens (reasoning included); a truncated one used them all.
    visible = np.minimum(visible, max_tok - 1)
    reasoning = np.minimum(reasoning, np.where(truncated, max_tok, max_tok - 1 - visible))
    output_tokens = np.where(truncated, max_tok, visible + reasoning)
    # Prompt caching: likelier on later turns of a conversation (the shared prefix).
    hit_p = np.where(multi & (turn > 0), 0.75, 0.35)
    hit = rk.random(rows) < hit_p
    frac_cached = rk.uniform(0.4, 0.92, rows)
    cached = np.zeros(rows, dtype=np.int64)
    openai = m_provider == "openai"
    cached = np.where(
        openai & hit & (input_tokens >= 1024), (input_tokens * frac_cached // 128) * 128, cached
    )
    anth = m_provider == "anthropic"
    cached = np.where(anth & hit, (input_tokens * frac_cached).astype(np.int64), cached)
    deep = m_provider == "deepseek"
    cached = np.where(deep & hit, (input_tokens * frac_cached // 64) * 64, cached)
    write = np.where(
        anth & ~hit & (rk.random(rows) < 0.6),
        (input_tokens * rk.uniform(0.3, 0.8, rows)).astype(np.int64),
        0,
    )
    write = np.minimum(write, input_tokens - cached)

    # ---- latency ----------------------------------------------------------------------
    rl = S("latency")
    ttft0 = np.array([m.ttft_ms for m in MODELS])[model]
    tpot = np.array([m.tpot_ms for m in MODELS])[model]
    ttft = ttft0 * (1 + input_tokens / 8000) * rl.lognormal(
        0, 0.4, rows
    ) + reasoning * tpot * rl.lognormal(0, 0.2, rows)
    gen = (output_tokens - reasoning) * tpot * rl.lognormal(0, 0.25, rows)
    stall = np.where(rl.random(rows) < 0.02, 1 + rl.pareto(1.5, rows), 1.0)
    latency = (ttft + gen) * stall + rl.uniform(15, 60, rows)
    cap = np.array([r.timeout_ms for r in R])[route]
    is_to |= ok & (latency >= cap)
    ok &= ~is_to
    latency = np.where(is_to, cap, latency)
    err_latency = rl.lognormal(np.log(250), 0.6, rows)
    latency = np.where(is_err, err_latency, latency)
    latency = np.round(latency, 1)
    ttft = np.round(np.minimum(ttft, latency), 1)
    # Rows that turned into timeouts lose their answer.
    # Labels as indices into small pools (building string arrays in numpy is slow).
    Q = QUALITY_LABELS.index
    quality = np.select(
        [is_err | is_to, filtered, refused, wrong, offtopic, truncated],
        [Q("error"), Q("filtered"), Q("refusal"), Q("wrong"), Q("offtopic"), Q("truncated")],
        Q("good"),
    )
    finish_names = ("stop", "length", "content_filter")
    finish = np.select([filtered, truncated], [2, 1], 0)

    # ---- cost (only the refunds gateway logs it: enterprise price, 10 % off list) --------
    m_in = np.array([m.price_in for m in MODELS])[model]
    m_cached = np.array([m.price_cached for m in MODELS])[model]
    m_out = np.array([m.price_out for m in MODELS])[model]
    m_write = np.array([m.price_cache_write for m in MODELS])[model]
    list_cost = (
        (input_tokens - cached - write) * m_in
        + cached * m_cached
        + write * m_write
        + output_tokens * m_out
    ) / 1e6
    with_cost = ok & (route == ROUTES.index("refunds"))

    # ---- retrieved documents (RAG routes; retrieval runs before the call, so always) -----
    retrieved = _retrieved(S("retrieval"), P, rag, n_docs, P.topic_kb[gtopic], d_ret, drift)

    # ---- assemble -----------------------------------------------------------------------
    tier_of = np.where(
        np.arange(_N_CUSTOMERS) < 25, 2, np.where(np.arange(_N_CUSTOMERS) % 3 == 0, 0, 1)
    )
    region_of = np.random.default_rng(7).integers(0, len(_REGIONS), _N_CUSTOMERS)
    cust = s_cust[sess]
    feat_n = np.array([len(r.features) for r in R])
    feat_local = (s_feature_u[sess] * feat_n[route]).astype(np.int64)
    features = [f for r in R for f in r.features]
    feat_off = np.cumsum(np.r_[0, feat_n[:-1]])
    params = _params_pool()
    tag_pool = [list(r.tags) + (["beta"] if b else []) for r in R for b in (False, True)]
    rid = S("ids")
    trace_ids = _hex_ids(rid, rows, 32)
    span_ids = _hex_ids(rid, rows, 16)
    release_names = [*_RELEASES, regression.release if regression else "v2.0.0"]
    rel_final = np.where(reg, 3, rel_idx)

    is_error = is_err | is_to
    null_int = pl.lit(None, dtype=pl.Int64)
    frame = pl.DataFrame(
        {
            "trace_id": pl.Series(trace_ids).cast(pl.String),
            "span_id": pl.Series(span_ids).cast(pl.String),
            "session_id": pl.Series(s_ids[sess]).cast(pl.String),
            "_cust": cust,
            "_user": s_user[sess],
            "feature": _gather(features, feat_off[route] + feat_local),
            "_ts": ts,
            "latency_ms": latency,
            "_ttft": ttft,
            "route": _gather(ROUTES, route),
            "release": _gather(release_names, rel_final),
            "provider": _gather([m.provider for m in MODELS], model),
            "model": _gather([m.name for m in MODELS], model),
            "params": _gather(params, (route * len(MODELS) + model) * 2 + reg.astype(np.int64)),
            "system": _gather(P.systems, sys_idx),
            "prompt": prompt,
            "response": response,
            "finish_reason": _gather(finish_names, finish),
            "_in": input_tokens,
            "_out": output_tokens,
            "_cached": cached,
            "_reason": reasoning,
            "_write": write,
            "_cost": list_cost * 0.9,
            "_with_cost": with_cost,
            "_is_error": is_error,
            "_is_to": is_to,
            "_err_text": _gather(_ERRORS, err_kind),
            "sample_rate": np.array([rates[r] for r in ROUTES])[route],
            "_has_ref": (np.array([r.reference_share for r in R])[route] > ref_u),
            "reference": text["reference"],
            "_tier": _gather(_TIERS, tier_of[cust]),
            "_region": _gather(_REGIONS, region_of[cust]),
            "_lang": _gather(LANGUAGES, lang),
            "_topic": _gather(P.topic_names, gtopic),
            "_quality": _gather(QUALITY_LABELS, quality),
            "tags": pl.Series(tag_pool).gather(pl.Series(route * 2 + (beta_u < 0.1))),
            "_multi": multi,
            "_turn": turn,
            "_prev_ok": prev_ok,
            "_provider_kind": _gather([m.provider for m in MODELS], model),
            "_reasoning_model": is_reasoning,
        }
    ).with_columns(retrieved.alias("retrieved"))
    ts_col = pl.from_epoch(c("_ts"), time_unit="us").dt.replace_time_zone("UTC")
    out = frame.with_columns(
        pl.concat_str(pl.lit("cust-"), c("_cust").cast(pl.String).str.zfill(4)).alias(
            "customer_id"
        ),
        pl.concat_str(
            pl.lit("user-"),
            c("_cust").cast(pl.String).str.zfill(4),
            pl.lit("-"),
            c("_user").cast(pl.String),
        ).alias("user_id"),
        ts_col.alias("timestamp"),
        (ts_col + pl.duration(microseconds=(c("latency_ms") * 1000).cast(pl.Int64))).alias(
            "end_time"
        ),
        pl.when(c("_is_error")).then(None).otherwise(c("_ttft")).alias("ttft_ms"),
        pl.lit("production").alias("environment"),
        pl.when(c("_is_error")).then(None).otherwise(c("response")).alias("response"),
        pl.when(c("_is_error")).then(None).otherwise(c("finish_reason")).alias("finish_reason"),
        pl.when(c("_is_error")).then(null_int).otherwise(c("_in")).alias("input_tokens"),
        pl.when(c("_is_error")).then(null_int).otherwise(c("_out")).alias("output_tokens"),
        # Mistral does not report cached tokens: unknown, not zero.
        pl.when(c("_is_error") | (c("_provider_kind") == "mistral"))
        .then(null_int)
        .otherwise(c("_cached"))
        .alias("cached_tokens"),
        pl.when(c("_is_error"))
        .then(null_int)
        .when(c("_reasoning_model"))
        .then(c("_reason"))
        .when(c("_provider_kind") == "openai")
        .then(pl.lit(0, dtype=pl.Int64))
        .otherwise(null_int)
        .alias("reasoning_tokens"),
        pl.when(~c("_is_error") & (c("_provider_kind") == "anthropic"))
        .then(c("_write"))
        .otherwise(null_int)
        .alias("cache_write_tokens"),
        pl.when(c("_with_cost")).then(c("_cost").round(8)).otherwise(None).alias("cost_usd"),
        pl.when(c("_is_error")).then(pl.lit("error")).otherwise(pl.lit("ok")).alias("status"),
        pl.when(c("_is_to"))
        .then(pl.lit("timeout"))
        .when(c("_is_error"))
        .then(c("_err_text"))
        .otherwise(None)
        .alias("error"),
        pl.when(c("_has_ref")).then(c("reference")).otherwise(None).alias("reference"),
        pl.concat_str(
            pl.lit('{"tier":"'),
            c("_tier"),
            pl.lit('","region":"'),
            c("_region"),
            pl.lit('","lang":"'),
            c("_lang"),
            pl.lit('","topic":"'),
            c("_topic"),
            pl.lit('","quality":"'),
            c("_quality"),
            pl.lit('"}'),
        ).alias("metadata"),
    )
    out = out.with_columns(_messages(out).alias("messages"))
    out = out.with_columns(
        [pl.lit(None, dtype=SCHEMA[f]).alias(f) for f in ("parent_span_id", "logprobs")]
    )
    out = out.select([pl.col(f).cast(SCHEMA[f]) for f in FIELDS])
    return out.sort("timestamp", maintain_order=True)


def _params_pool() -> list[str]:
    """``params`` JSON per (route, model, regression release), compact like the readers'."""
    pool = []
    for r in ROUTES:
        spec = _ROUTES[r]
        for m in MODELS:
            for reg in (False, True):
                if m.reasoning:
                    obj: dict[str, object] = {
                        "reasoning_effort": "low" if reg else "medium",
                        "max_completion_tokens": spec.max_tokens,
                    }
                else:
                    obj = {
                        "temperature": 1.0 if reg else float(spec.temperature),
                        "top_p": 1.0,
                        "max_tokens": spec.max_tokens,
                    }
                pool.append(json.dumps(obj, separators=(",", ":")))
    return pool


def _messages(frame: pl.DataFrame) -> pl.Series:
    """The input conversation on later turns of multi-turn routes.

    ``[previous user, previous assistant, user]`` (the system message is in ``system``;
    the first turn's conversation is just ``prompt``, so it stays null). Built in Arrow on
    the rows that have one: the candidate columns are laid end to end and one ``take``
    picks the present ones in row order; offsets come from the per-row counts.
    """
    c = pl.col
    parts = frame.select(
        c("prompt").shift(1).alias("prev_prompt"),
        c("response").shift(1).alias("prev_response"),
        c("prompt"),
        (c("_multi") & (c("_turn") > 0)).alias("later"),
        (c("_prev_ok") & c("response").shift(1).is_not_null()).alias("prev_ok"),
    )
    later = parts["later"].to_numpy()
    sub = parts.filter(pl.col("later"))
    m = sub.height
    present = np.stack([np.ones(m, bool), sub["prev_ok"].to_numpy(), np.ones(m, bool)], axis=1)
    rows_idx, slot = np.nonzero(present)
    take = pa.array(slot.astype(np.int64) * m + rows_idx)
    content = pa.concat_arrays(
        [
            sub[name].to_arrow().cast(pa.large_string())
            for name in ("prev_prompt", "prev_response", "prompt")
        ]
    ).take(take)
    roles = pa.array(["user", "assistant", "user"], type=pa.large_string()).take(pa.array(slot))
    values = pa.StructArray.from_arrays([roles, content], names=["role", "content"])
    counts = np.zeros(frame.height, dtype=np.int64)
    counts[later] = present.sum(axis=1)
    offsets = pa.array(np.r_[0, np.cumsum(counts)].astype(np.int64))
    lists = pa.LargeListArray.from_arrays(offsets, values, mask=pa.array(~later))
    return pl.Series("messages", lists).cast(pl.List(MESSAGE))


def _retrieved(
    rng: np.random.Generator,
    P: _Pools,
    rag: np.ndarray,
    n_docs: np.ndarray,
    kb_topic: np.ndarray,
    drifted: np.ndarray,
    drift: DriftSpec | None,
) -> pl.Series:
    """``retrieved`` lists (best first) from flat arrays and offsets, built in Arrow."""
    rows = len(rag)
    kmax = 4
    n_kb = len(KB_TOPICS)
    # Distinct distractors: increasing offsets 1..(2*kmax) from the relevant topic.
    steps = 1 + rng.integers(0, 2, size=(rows, kmax - 1))
    offs = np.concatenate([np.zeros((rows, 1), dtype=np.int64), np.cumsum(steps, axis=1)], axis=1)
    topic = (np.maximum(kb_topic, 0)[:, None] + offs) % n_kb
    # Now and then the relevant document is only second best.
    swap = rng.random(rows) < 0.08
    topic[swap, 0], topic[swap, 1] = topic[swap, 1], topic[swap, 0].copy()
    top1 = np.clip(rng.normal(0.84, 0.06, rows), 0.3, 0.99)
    dec = np.abs(rng.normal(0.07, 0.03, size=(rows, kmax - 1)))
    scores = np.concatenate([top1[:, None], top1[:, None] - np.cumsum(dec, axis=1)], axis=1)
    if drift is not None:
        scores = scores + np.where(drifted, drift.retrieval_score, 0.0)[:, None]
    scores = np.round(np.clip(scores, 0.0, 1.0), 4)
    k = np.where(rag, n_docs, 0)
    mask = np.arange(kmax)[None, :] < k[:, None]
    flat_topic = topic[mask]
    pick = pa.array(flat_topic)
    ids = pa.array(P.doc_ids, type=pa.string()).take(pick)
    content = pa.array(P.docs, type=pa.string()).take(pick)
    values = pa.StructArray.from_arrays(
        [ids, content, pa.array(scores[mask], type=pa.float64())], names=["id", "content", "score"]
    )
    offsets = pa.array(np.r_[0, np.cumsum(k)].astype(np.int32))
    lists = pa.ListArray.from_arrays(offsets, values, mask=pa.array(~rag))
    return pl.Series("retrieved", lists).cast(pl.List(DOCUMENT))


def write_generated(
    out: Path,
    rows: int,
    seed: int = 0,
    *,
    start: datetime | date | None = None,
    days: int = 42,
    drift: DriftSpec | None = None,
    regression: RegressionSpec | None = None,
    route_rates: dict[str, float] | None = None,
    drift_kinds: Sequence[str] | None = None,
    to: str | None = None,
) -> pl.DataFrame:
    """Generate and write atomically (.parquet, .jsonl[.gz|.zst]); returns the frame."""
    from llmobs_cli.core.ingest.convert import output_format, write_frame

    frame = generate(
        rows,
        seed,
        start=start,
        days=days,
        drift=drift,
        regression=regression,
        route_rates=route_rates,
        drift_kinds=drift_kinds,
    )
    write_frame(frame, Path(out), output_format(Path(out), to))
    return frame
