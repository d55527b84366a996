"""The short-stay (ショートステイ) vacancy board: vocabulary (`words`),
facilities and their staff (`facilities`, `facility_fields`, `importer`),
figures and their history (`figures`), the board query (`board`), bed
enquiries (`enquiry`) and the morning freshness prompt job (`jobs`). Nothing
here imports Slack; `/vacancy` parsing lives in `bot.commands.vacancy`."""
