"""Council and team meetings: scheduling, invitations and answers, reminders, agenda, minutes and calendar feeds."""
