"""The phrase corpus of the synthetic traces: topics (question, right and wrong answer),
prompt openers and context sentences, answer fillers, refusals, acknowledgements and system
prompts.

Every phrase is a parallel translation (en, es, de, fr), so that a shift of the language mix
does not move prompt lengths; a fact carries one number (``{v}``) that the wrong answer
replaces. Plain data: :mod:`core.synth.pools` turns it into index-addressed string pools.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    name: str
    question: tuple[str, str, str, str]  # en, es, de, fr
    answer: tuple[str, str, str, str]  # with {v}
    value: str
    wrong: str


def _t(name: str, value: str, wrong: str, q: Sequence[str], a: Sequence[str]) -> Topic:
    return Topic(name, tuple(q), tuple(a), value, wrong)  # type: ignore[arg-type]


#: Help-centre knowledge base (search_qa and support_agent) of the fictional "Nimbus" app.
KB_TOPICS: tuple[Topic, ...] = (
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
REFUND_TOPICS: tuple[Topic, ...] = (
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
CHAT_TOPICS: tuple[Topic, ...] = (
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
SUMMARIZE_TOPICS: tuple[Topic, ...] = (
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
OPENERS: dict[str, tuple[tuple[str, str, str, str], ...]] = {
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
CONTEXT: tuple[tuple[str, str, str, str], ...] = (
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
FILLERS: tuple[tuple[str, str, str, str], ...] = (
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

REFUSALS: tuple[tuple[str, str, str, str], ...] = (
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

ACKS: dict[str, tuple[tuple[str, str, str, str], ...]] = {
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
REGRESSION_SYSTEM = "You are a creative Nimbus assistant. Answer freely; documents are optional."
