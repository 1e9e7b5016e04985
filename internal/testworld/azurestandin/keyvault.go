package azurestandin

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// vaultResource is Key Vault's resource in Entra: the audience of its tokens
// and the resource of its challenge.
const vaultResource = "https://vault.azure.net"

func vaultError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}

// vault answers like Key Vault (azsecrets v1.5.1 GetSecret): 401 with a
// challenge naming the vault's tenant to a request without a token, then a
// check of the token's signature, audience and tenant, and of the caller's
// right to read secrets.
func (a *Azure) vault(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSuffix(strings.ToLower(hostOnly(r.Host)), "."+VaultSuffix)
	a.mu.Lock()
	v := a.vaults[name]
	a.mu.Unlock()
	if v == nil { // DialContext does not resolve the names of other vaults
		vaultError(w, http.StatusNotFound, "VaultNotFound", "No vault named "+name+".")
		return
	}
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization="https://%s/%s", resource="%s"`, EntraHost, v.TenantID, vaultResource))
		vaultError(w, http.StatusUnauthorized, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
		return
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(bearer, claims, func(*jwt.Token) (any, error) { return &a.entraKey.PublicKey, nil },
		jwt.WithAudience(vaultResource), jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(a.clock.Now))
	if err != nil {
		vaultError(w, http.StatusUnauthorized, "Unauthorized", "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/"+v.TenantID+"/.")
		return
	}
	if tid, _ := claims["tid"].(string); !strings.EqualFold(tid, v.TenantID) {
		vaultError(w, http.StatusUnauthorized, "Unauthorized", "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/"+v.TenantID+"/.")
		return
	}
	app, _ := claims["appid"].(string)
	if len(v.Readers) > 0 && !slices.Contains(v.Readers, app) {
		vaultError(w, http.StatusForbidden, "Forbidden", fmt.Sprintf("The user, group or application 'appid=%s' does not have secrets get permission on key vault '%s'.", app, v.Name))
		return
	}
	secret, ok := strings.CutPrefix(r.URL.Path, "/secrets/")
	secret, _, _ = strings.Cut(strings.Trim(secret, "/"), "/") // {name}[/{version}]
	a.mu.Lock()
	value, found := v.Secrets[secret]
	a.mu.Unlock()
	if r.Method != http.MethodGet || !ok || !found {
		vaultError(w, http.StatusNotFound, "SecretNotFound", "A secret with (name/id) "+secret+" was not found in this key vault.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"value": value, "id": "https://" + name + "." + VaultSuffix + "/secrets/" + secret + "/0123456789abcdef0123456789abcdef",
		"attributes": map[string]any{"enabled": true, "recoveryLevel": "Recoverable+Purgeable"},
	})
}

func hostOnly(hostport string) string {
	if i := strings.LastIndex(hostport, ":"); i >= 0 && !strings.Contains(hostport[i:], "]") {
		return hostport[:i]
	}
	return hostport
}
