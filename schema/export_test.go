package schema

// Exported for the tests in package schema_test, which cannot be in package schema:
// they use testenv, which imports schema.
var (
	MigrateFS  = migrateFS
	RollbackFS = rollbackFS
	Load       = load
)
