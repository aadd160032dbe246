"""Reading results for people: console tables now, HTML reports and tearsheets later."""
