"""Meta-learning task datasets: entity rows in Spark, features from Feast, files for the trainer."""
