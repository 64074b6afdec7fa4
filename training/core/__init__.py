"""What both trainers share: the settings table, model, data, fitting, evaluation, results schema, process setup."""
