-- Authorization codes move to the shared cache: they live 60 s at most, like the pending
-- authorization requests already there, and single use is one atomic take on any replica
-- (src/oauth/grants/authorization_code.rs).
DROP TABLE authorization_codes;
