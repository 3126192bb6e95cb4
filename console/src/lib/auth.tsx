// Who is signed in: the token (sessionStorage; the same token also as an HttpOnly session cookie
// for EventSource) and /api/v1/auth/me with the permissions.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { api, getToken, onUnauthorized, setToken } from "./api";
import type { Me, TokenOut } from "./types";

interface Auth {
  me: Me | null;
  /** True while the saved token is being checked on start. */
  checking: boolean;
  can: (permission: string) => boolean;
  login: (username: string, password: string) => Promise<void>;
  logout: () => Promise<void>;
}

const AuthContext = createContext<Auth | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [me, setMe] = useState<Me | null>(null);
  const [checking, setChecking] = useState<boolean>(() => getToken() !== null);

  useEffect(() => onUnauthorized(() => setMe(null)), []);

  useEffect(() => {
    if (!getToken()) return;
    api
      .get<Me>("/api/v1/auth/me")
      .then(setMe)
      .catch(() => setMe(null))
      .finally(() => setChecking(false));
  }, []);

  const login = useCallback(async (username: string, password: string) => {
    // The bearer token authenticates every fetch (so no CSRF token is needed); the HttpOnly
    // session cookie is for EventSource, which cannot send headers (live journey counts).
    // Logout revokes the token and clears the cookie.
    const answer = await api.post<TokenOut>("/api/v1/auth/login", { username, password, session_cookie: true });
    setToken(answer.access_token);
    setMe(await api.get<Me>("/api/v1/auth/me"));
  }, []);

  const logout = useCallback(async () => {
    try {
      await api.post("/api/v1/auth/logout");
    } catch {
      // the token may already be gone; signing out locally is what matters
    }
    setToken(null);
    setMe(null);
  }, []);

  const value = useMemo<Auth>(
    () => ({
      me,
      checking,
      can: (permission: string) => me?.permissions.includes(permission) ?? false,
      login,
      logout,
    }),
    [me, checking, login, logout],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): Auth {
  const context = useContext(AuthContext);
  if (!context) throw new Error("useAuth outside AuthProvider");
  return context;
}
