"""The rules stage, between the schema and the transform: rules found in the table (or declared by
the user), shown, saved in the model, and kept by construction in every generated row."""
