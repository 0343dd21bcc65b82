DROP TABLE access_token_generations;
