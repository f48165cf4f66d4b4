/** Layout (header with navigation) and the routes of the single-page app. */
import { BrowserRouter, Link, NavLink, Route, Routes, useLocation } from "react-router";
import type { ApiClient } from "./api/client";
import { ApiProvider } from "./api/context";
import { AuthProvider, useAuth } from "./auth/AuthContext";
import { EventsProvider } from "./chat/events";
import { NotificationsMenu } from "./chat/NotificationsMenu";
import { Avatar } from "./components/bits";
import { SearchBox } from "./components/SearchBox";
import { LoginPage, RegisterPage, RequireAuth } from "./pages/AuthPages";
import { ChannelRoute } from "./pages/ChannelPage";
import { Dashboard } from "./pages/Dashboard";
import { CategoryRoute, Directory } from "./pages/Directory";
import { Home } from "./pages/Home";
import { NotFound } from "./pages/NotFound";
import { SearchPage } from "./pages/SearchPage";
import { SettingsPage } from "./pages/Settings";
import { RecordingRoute } from "./recordings/RecordingPage";

function Header() {
  const auth = useAuth();
  const location = useLocation();
  return (
    <header className="site-header">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <Link to="/" className="brand" aria-label="Kitch home">
        <span className="brand-mark" aria-hidden="true">K</span>
        <span className="brand-name">Kitch</span>
      </Link>
      <nav aria-label="Main" className="nav">
        <NavLink to="/" end>
          Home
        </NavLink>
        <NavLink to="/directory">Browse</NavLink>
        {auth.status === "signed-in" && (
          <>
            <NavLink to="/dashboard">Dashboard</NavLink>
            <NavLink to="/settings">Settings</NavLink>
          </>
        )}
      </nav>
      <SearchBox key={location.pathname === "/search" ? "search" : "other"} />
      <div className="account">
        {auth.status === "signed-in" ? (
          <>
            <NotificationsMenu />
            {auth.me && (
              <Link to={`/${encodeURIComponent(auth.me.username)}`} className="account-me">
                <Avatar name={auth.me.username} url={auth.me.avatar_url} size={28} />
                <span className="account-name" data-testid="signed-in-as">
                  {auth.me.display_name}
                </span>
              </Link>
            )}
            <button type="button" className="btn btn-small" onClick={() => void auth.logout()}>
              Sign out
            </button>
          </>
        ) : auth.status === "signed-out" ? (
          <>
            <Link
              className="btn btn-small"
              to={`/login${location.pathname !== "/" && location.pathname !== "/login" ? `?next=${encodeURIComponent(location.pathname)}` : ""}`}
            >
              Sign in
            </Link>
            <Link className="btn btn-small btn-primary" to="/register">
              Sign up
            </Link>
          </>
        ) : null}
      </div>
    </header>
  );
}

export function AppRoutes() {
  return (
    <>
      <Header />
      <main id="main" tabIndex={-1}>
        <Routes>
          <Route path="/" element={<Home />} />
          <Route path="/directory" element={<Directory />} />
          <Route path="/directory/:slug" element={<CategoryRoute />} />
          <Route path="/search" element={<SearchPage />} />
          <Route path="/login" element={<LoginPage />} />
          <Route path="/register" element={<RegisterPage />} />
          <Route
            path="/dashboard"
            element={
              <RequireAuth path="/dashboard">
                <Dashboard />
              </RequireAuth>
            }
          />
          <Route
            path="/settings"
            element={
              <RequireAuth path="/settings">
                <SettingsPage />
              </RequireAuth>
            }
          />
          <Route path="/videos/:id" element={<RecordingRoute />} />
          <Route path="/:channel" element={<ChannelRoute />} />
          <Route path="*" element={<NotFound />} />
        </Routes>
      </main>
    </>
  );
}

export function App({ client }: { client: ApiClient }) {
  return (
    <ApiProvider client={client}>
      <AuthProvider>
        <EventsProvider>
          <BrowserRouter>
            <AppRoutes />
          </BrowserRouter>
        </EventsProvider>
      </AuthProvider>
    </ApiProvider>
  );
}
