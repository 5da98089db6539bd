package e2e_test

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"gopkg.in/yaml.v3"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/e2e/temporalcluster"
)

// testedPlugin is the persistence and visibility plugin the topology test runs; the
// compose file must name it.
const testedPlugin = "postgres12_pgx"

// composeTemporal is what docker-compose.yml says of Temporal: the topology test runs
// its cluster with these settings, and TestComposeRunsTheTestedTemporal checks that they
// are ones it can run.
type composeTemporal struct {
	ServerImage, SchemaImage, SetupImage string
	// Settings are the temporal service's variables of the server's configuration template.
	Settings map[string]string
	// SchemaSettings are the temporal-schema service's variables, SchemaCommand its script.
	SchemaSettings map[string]string
	SchemaCommand  string
	// Namespace is the one temporal-setup creates; SearchAttributes the ones it registers.
	Namespace        string
	SearchAttributes map[string]string
	// SurveyhooksNamespace is the TEMPORAL_NAMESPACE the surveyhooks services use.
	SurveyhooksNamespace string
	// ServerVolumes are the temporal service's mounts, host:container[:mode].
	ServerVolumes []string
}

type composeService struct {
	Image       string         `yaml:"image"`
	Volumes     []string       `yaml:"volumes"`
	Build       any            `yaml:"build"`
	Command     any            `yaml:"command"`
	Environment map[string]any `yaml:"environment"`
}

// readCompose reads ../docker-compose.yml with .env.example's values, as CI validates it.
func readCompose(t *testing.T) composeTemporal {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "docker-compose.yml"))
	require.NoError(t, err)
	var file struct {
		Services map[string]composeService `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &file))
	vars := dotenvFile(t, filepath.Join("..", ".env.example"))
	vars["SURVEYHOOKS_ENCRYPTION_KEYS"] = "unused"
	service := func(name string) composeService {
		svc, ok := file.Services[name]
		require.True(t, ok, "docker-compose.yml has no service %s", name)
		return svc
	}
	env := func(name string) map[string]string {
		out := map[string]string{}
		for k, v := range service(name).Environment {
			s, ok := v.(string)
			require.True(t, ok, "service %s: quote the value of %s", name, k)
			out[k] = composeInterpolate(s, vars)
		}
		return out
	}
	script := func(name string) string {
		switch c := service(name).Command.(type) {
		case string:
			return composeInterpolate(c, vars)
		case []any:
			var parts []string
			for _, p := range c {
				parts = append(parts, p.(string))
			}
			return composeInterpolate(strings.Join(parts, "\n"), vars)
		}
		t.Fatalf("service %s: no command", name)
		return ""
	}
	c := composeTemporal{
		ServerImage:      service("temporal").Image,
		SchemaImage:      service("temporal-schema").Image,
		SetupImage:       service("temporal-setup").Image,
		Settings:         env("temporal"),
		SchemaSettings:   env("temporal-schema"),
		SchemaCommand:    script("temporal-schema"),
		Namespace:        env("temporal-setup")["TEMPORAL_NAMESPACE"],
		SearchAttributes: map[string]string{},
		ServerVolumes:    service("temporal").Volumes,
	}
	for _, m := range regexp.MustCompile(`--name (\w+) --type (\w+)`).FindAllStringSubmatch(script("temporal-setup"), -1) {
		c.SearchAttributes[m[1]] = m[2]
	}
	c.SurveyhooksNamespace = env("worker")["TEMPORAL_NAMESPACE"]
	return c
}

var composeVariable = regexp.MustCompile(`\$\{(\w+)(?:(:?[-?])([^}]*))?\}`)

// composeInterpolate resolves ${NAME}, ${NAME:-default} and ${NAME:?message} as
// docker-compose does, and $$ to $.
func composeInterpolate(s string, vars map[string]string) string {
	const dollar = "\x00"
	s = strings.ReplaceAll(s, "$$", dollar)
	s = composeVariable.ReplaceAllStringFunc(s, func(m string) string {
		sub := composeVariable.FindStringSubmatch(m)
		v, set := vars[sub[1]]
		if sub[2] == ":-" && v == "" || sub[2] == "-" && !set {
			return sub[3]
		}
		return v
	})
	return strings.ReplaceAll(s, dollar, "$")
}

// dotenvFile reads KEY=value lines, skipping comments.
func dotenvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	vars := map[string]string{}
	for line := range strings.Lines(string(raw)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "%s: %q", path, line)
		vars[k] = v
	}
	return vars
}

// TestComposeRunsTheTestedTemporal checks docker-compose.yml against what
// TestTopologyFaultsUnderLoad runs: the server release go.mod pins (so the one the test
// builds), persistence and visibility on PostgreSQL through the pgx plugin, the schema of
// that plugin, the namespace surveyhooks uses and the search attributes it sets.
func TestComposeRunsTheTestedTemporal(t *testing.T) {
	t.Parallel()
	c := readCompose(t)
	version, err := temporalcluster.ServerVersion()
	require.NoError(t, err)
	tag := strings.TrimPrefix(version, "v")
	require.Equal(t, "temporalio/server:"+tag, c.ServerImage, "the tested server release is the module go.mod pins")
	require.Equal(t, "temporalio/admin-tools:"+tag, c.SchemaImage, "the schema comes from the same release")
	require.Equal(t, "temporalio/admin-tools:"+tag, c.SetupImage)

	require.Equal(t, testedPlugin, c.Settings["DB"], "persistence plugin")
	require.NotEqual(t, "true", strings.ToLower(c.Settings["ENABLE_ES"]), "visibility on SQL, as tested")
	store, visibility := temporalcluster.Databases(c.Settings)
	schemaStore, schemaVisibility := temporalcluster.Databases(c.SchemaSettings)
	require.Equal(t, []string{store, visibility}, []string{schemaStore, schemaVisibility}, "the schema goes to the databases the server uses")
	require.Equal(t, c.Settings["DB"], c.SchemaSettings["DB"], "temporal-sql-tool uses the server's plugin")
	for _, name := range temporalcluster.SchemaNames(testedPlugin) {
		require.Contains(t, c.SchemaCommand, name, "temporal-schema applies the plugin's embedded schema")
	}
	require.Contains(t, c.SchemaCommand, "temporal-sql-tool --plugin $DB")

	// The server reads the dynamic configuration the tested nodes run.
	dcPath := c.Settings["DYNAMIC_CONFIG_FILE_PATH"]
	require.NotEmpty(t, dcPath, "the temporal service names its dynamic configuration file")
	require.Contains(t, c.ServerVolumes, "./e2e/temporalcluster/dynamicconfig.yaml:"+dcPath+":ro",
		"the temporal service mounts the tested dynamic configuration at DYNAMIC_CONFIG_FILE_PATH")

	require.NotEmpty(t, c.Namespace)
	require.Equal(t, c.SurveyhooksNamespace, c.Namespace, "temporal-setup creates the namespace surveyhooks uses")
	want := map[string]string{}
	for name, typ := range delivery.SearchAttributes() {
		want[name] = map[enumspb.IndexedValueType]string{
			enumspb.INDEXED_VALUE_TYPE_KEYWORD:      "Keyword",
			enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST: "KeywordList",
		}[typ]
	}
	require.Equal(t, want, c.SearchAttributes, "temporal-setup registers the search attributes the event workflows set")
	t.Logf("docker-compose.yml runs Temporal %s: DB=%s, databases %s and %s, namespace %s, search attributes %v",
		tag, c.Settings["DB"], store, visibility, c.Namespace, slices.Sorted(maps.Keys(c.SearchAttributes)))
}
